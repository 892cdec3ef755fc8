/**
 * A fault as the policy sees it, built the same way from a fresh finding (the monitor's first plan) and from
 * an incident (triage, which adds the node's history): one shape, so both decisions read the same facts.
 */
import {
  type Action,
  type ClassificationSource,
  type Finding,
  type FindingKind,
  FindingKinds,
  type Severity,
} from './finding.js';
import type { Incident } from './incident.js';

export interface FaultInput {
  category: string;
  xid?: number;
  kind: FindingKind;
  severity: Severity;
  source: ClassificationSource;
  faultKey: string;
  node: string;
  /** The classifier's recommendation; used for custom and unknown categories only. */
  recommendedAction?: Action;
  /** Seen at start-up with a sticky value of unknown age. */
  preexisting?: boolean;
}

/** The fault key's prefix is the finding kind (`xid:79:gpu3`, `ecc_dbe:gpu0`, `gpu_missing`). */
export function faultKindOf(faultKey: string): FindingKind {
  const prefix = faultKey.split(':')[0] ?? '';
  return FindingKinds.find((k) => k === prefix) ?? 'unknown';
}

export function faultOfFinding(finding: Finding, node: string, preexisting: boolean): FaultInput {
  return {
    category: finding.category,
    ...(finding.xid !== undefined ? { xid: finding.xid } : {}),
    kind: finding.kind ?? faultKindOf(finding.key),
    severity: finding.severity,
    source: finding.source,
    faultKey: finding.key,
    node,
    recommendedAction: finding.action,
    preexisting,
  };
}

export function faultOfIncident(incident: Incident): FaultInput {
  return {
    category: incident.category,
    ...(incident.xid !== undefined ? { xid: incident.xid } : {}),
    kind: faultKindOf(incident.faultKey),
    severity: incident.severity,
    source: incident.source,
    faultKey: incident.faultKey,
    node: incident.node,
    recommendedAction: incident.recommendedAction,
    preexisting: incident.preexisting,
  };
}

/**
 * The operator's policy (POLICY_FILE YAML, validated by config/policy-file.ts): how faults are classified
 * beyond NVIDIA's defaults, and what is done about each one. Types only; decisions live in remediate/policy.ts.
 */
import type { Action, FindingKind, Severity } from './finding.js';
import type { PolicyMode, RemediationAction } from './incident.js';

export interface XidOverride {
  severity?: Severity;
  action?: Action;
}

/** An operator-defined category: described in words so the LLM can sort evidence into it (no regex). */
export interface CustomCategory {
  name: string;
  description: string;
  severity: Severity;
  action: Action;
}

export interface ClassificationPolicy {
  /** Per-XID severity/action overrides of NVIDIA's catalog defaults. */
  xid: Record<number, XidOverride>;
  /** Volatile single-bit ECC errors on one GPU at or above which we call it an SBE storm (warning). */
  sbeStormThreshold: number;
  /** GPU temperature (°C) at or above which a thermal warning is raised. */
  thermalWarningC: number;
  /** NVLink CRC/replay/recovery error count at or above which an NVLink finding is raised. */
  nvlinkErrorThreshold: number;
  categories: CustomCategory[];
}

/** A remediation rule. The first rule whose every given matcher matches wins; unmatched faults use defaults. */
export interface RemediationRule {
  match: {
    category?: string;
    xid?: number;
    kind?: FindingKind;
    severity?: Severity;
    source?: 'rules' | 'llm';
  };
  action: RemediationAction;
  mode: PolicyMode;
  /** Evict around a PodDisruptionBudget after DRAIN_TIMEOUT instead of asking a human. Off unless said. */
  force?: boolean;
}

export interface EscalationPolicy {
  /** A fault that returns within this many hours after a reboot escalates to replace. */
  returnWithinHours: number;
  /** Reboots for the same fault on the same node before the next action is replace. */
  maxRebootsPerFault: number;
  /** A node remediated this many times within `windowDays` goes to a human instead. */
  maxRemediationsPerNode: number;
  windowDays: number;
}

export interface RemediationPolicy {
  rules: RemediationRule[];
  escalation: EscalationPolicy;
  /** Mode for a destructive action whose category came from the LLM rather than the rules. */
  llmDestructiveMode: PolicyMode;
}

export interface Policy {
  classification: ClassificationPolicy;
  remediation: RemediationPolicy;
}

export const defaultClassificationPolicy: ClassificationPolicy = {
  xid: {},
  sbeStormThreshold: 1000,
  thermalWarningC: 87,
  nvlinkErrorThreshold: 100,
  categories: [],
};

export const defaultEscalationPolicy: EscalationPolicy = {
  returnWithinHours: 24,
  maxRebootsPerFault: 1,
  maxRemediationsPerNode: 3,
  windowDays: 7,
};

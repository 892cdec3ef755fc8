/** XID rules: what each XID means (NVIDIA's catalog, the driver's text for 144–150 and 154) and its finding. */
import {
  type Action,
  type Finding,
  type FindingKind,
  type Severity,
  severityRank,
} from '../domain/finding.js';
import type { ClassificationPolicy } from '../domain/policy.js';
import type { DcgmFrCatalog, XidCatalog, XidEntry } from './catalog.js';

export interface RuleContext {
  catalog: XidCatalog;
  policy: ClassificationPolicy;
  /** DCGM_FR codes, to name health incidents; without it every health incident text is ambiguous. */
  frCodes?: DcgmFrCatalog;
}

export const MAX_EVIDENCE_LINES = 20;
export const MAX_EVIDENCE_CHARS = 400;

export function clip(s: string): string {
  return s.length > MAX_EVIDENCE_CHARS ? `${s.slice(0, MAX_EVIDENCE_CHARS)}…` : s;
}

export function xidCategory(xid: number, severity: Severity): string {
  return severity === 'critical' ? `XID_CRITICAL_${xid}` : `XID_WARNING_${xid}`;
}

/** `ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS (GPU has fallen off the bus)` → `GPU has fallen off the bus`. */
export function shortXidName(entry: XidEntry): string {
  const m = /\(([^()]+)\)\s*$/.exec(entry.name);
  return m?.[1] ?? entry.name;
}

export interface XidDecision {
  severity: Severity;
  action: Action;
  category: string;
  ambiguous: boolean;
  /** Why, in a few words (catalog default, text decode, policy override, unknown). */
  basis: string;
  /** The decision needed the driver's text and did not have it: another reading of the same XID wins. */
  textless?: boolean;
}

const XID154_ACTIONS: { re: RegExp; severity: Severity; action: Action; label: string }[] = [
  { re: /node reboot required/i, severity: 'critical', action: 'reboot', label: 'Node Reboot Required' },
  { re: /gpu reset required/i, severity: 'critical', action: 'reboot', label: 'GPU Reset Required' },
  { re: /drain and reset/i, severity: 'critical', action: 'reboot', label: 'Drain and Reset' },
  { re: /drain p2p/i, severity: 'warning', action: 'monitor', label: 'Drain P2P' },
  { re: /\bnone\b/i, severity: 'info', action: 'monitor', label: 'None' },
];

/** XID 154's text: `GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)` — the target wins. */
function decode154(message: string): { severity: Severity; action: Action; label: string } | undefined {
  const target = /\bto\s+(?:0x[0-9a-f]+\s*)?\(([^)]*)\)/i.exec(message)?.[1] ?? message;
  return XID154_ACTIONS.find((a) => a.re.test(target));
}

/** NVLink5 XIDs 144–150 carry Fatal / Nonfatal (or "Link Fatal") in their text. */
function decodeNvlink5(message: string): { severity: Severity; action: Action; label: string } | undefined {
  if (/\bnon-?\s?fatal\b/i.test(message))
    return { severity: 'warning', action: 'monitor', label: 'Nonfatal' };
  if (/\bfatal\b/i.test(message)) return { severity: 'critical', action: 'reboot', label: 'Fatal' };
  return undefined;
}

/**
 * NVIDIA's recovery bucket in words, naming the catalog's own action word once. The planned action is
 * the policy's business and is shown apart on the alert, so the explanation does not repeat it.
 */
const catalogRecovery: Record<XidEntry['catalogAction'], string> = {
  none: 'none needed (NONE)',
  monitor: 'keep watching (MONITOR)',
  restart_app: 'restart the application (RESTART_APP)',
  reset_gpu: 'reset the GPU (RESET_GPU): drain the node and run nvidia-smi --gpu-reset, no reboot',
  reboot: 'reboot the node (REBOOT)',
  replace: 'replace the node (REPLACE)',
};

/** Severity/action/category of one XID with (optionally) its driver text, before merging observations. */
export function decideXid(xid: number, message: string | undefined, ctx: RuleContext): XidDecision {
  const entry = ctx.catalog.get(xid);
  let severity: Severity;
  let action: Action;
  let ambiguous = false;
  let textless = false;
  let basis: string;
  if (!entry) {
    severity = 'warning';
    action = 'monitor';
    ambiguous = true;
    basis = 'no recovery is known for it: reported as a warning and watched';
  } else {
    severity = entry.severity;
    action = entry.action;
    basis = `NVIDIA's recommended recovery: ${catalogRecovery[entry.catalogAction]}`;
    if (xid === 154) {
      const d = message ? decode154(message) : undefined;
      if (d) {
        severity = d.severity;
        action = d.action;
        basis = `the driver asks for recovery action "${d.label}"`;
      } else {
        severity = 'critical';
        action = 'reboot';
        textless = true;
        basis =
          'the recovery action the driver asked for is only in its kernel line, which this source does not show ' +
          '(the exporter’s err_msg for XID 154 is a fixed text, dmon gives only the code): a human decides';
      }
    } else if (xid >= 144 && xid <= 150) {
      const d = message ? decodeNvlink5(message) : undefined;
      if (d) {
        severity = d.severity;
        action = d.action;
        basis = `the driver marked this NVLink5 error ${d.label}`;
      } else {
        ambiguous = true;
        textless = true;
        basis = 'the driver did not say Fatal or Nonfatal';
      }
    }
  }
  const override = ctx.policy.xid[xid];
  if (override) {
    if (override.severity) severity = override.severity;
    if (override.action) action = override.action;
    if (override.severity || override.action) {
      basis = `the policy overrides XID ${xid}: ${severity}, ${action}`;
      ambiguous = false;
    }
  }
  const out: XidDecision = { severity, action, category: xidCategory(xid, severity), ambiguous, basis };
  if (textless && !(override?.severity || override?.action)) out.textless = true;
  return out;
}

export interface XidObs {
  xid: number;
  gpu?: number;
  key: string;
  messages: string[];
  evidence: string[];
}

export function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export function gpuLabel(gpu: number | undefined): string {
  return gpu === undefined ? 'A GPU' : `GPU ${gpu}`;
}

export function xidFinding(o: XidObs, ctx: RuleContext): Finding {
  // With several texts for one XID on one GPU, the most severe reading counts — among those that could read
  // the driver's text, when one could (XID 154's kernel line beats the exporter's fixed err_msg).
  const all = (o.messages.length > 0 ? o.messages : [undefined]).map((m) => decideXid(o.xid, m, ctx));
  const read = all.filter((d) => !d.textless);
  const decisions = read.length > 0 ? read : all;
  const decided = decisions.reduce((best, d) =>
    severityRank[d.severity] > severityRank[best.severity] || (best.ambiguous && !d.ambiguous) ? d : best,
  );
  const entry = ctx.catalog.get(o.xid);
  const what = entry ? shortXidName(entry) : 'an XID not in NVIDIA’s catalog';
  const f: Finding = {
    kind: 'xid',
    category: decided.category,
    severity: decided.severity,
    action: decided.action,
    xid: o.xid,
    evidence: o.evidence.slice(0, MAX_EVIDENCE_LINES).map(clip),
    explanation: `${gpuLabel(o.gpu)} reported XID ${o.xid} (${what}). ${capitalize(decided.basis)}.`,
    source: 'rules',
    key: o.key,
  };
  if (o.gpu !== undefined) f.gpu = o.gpu;
  if (decided.ambiguous) f.ambiguous = true;
  return f;
}

export function finding(
  kind: FindingKind,
  category: string,
  severity: Severity,
  action: Action,
  key: string,
  explanation: string,
  evidence: string[],
  gpu?: number,
): Finding {
  const f: Finding = {
    kind,
    category,
    severity,
    action,
    evidence: evidence.slice(0, MAX_EVIDENCE_LINES).map(clip),
    explanation,
    source: 'rules',
    key,
  };
  if (gpu !== undefined) f.gpu = gpu;
  return f;
}

/** The classifier's vocabulary: what a fault is, how bad, and what NVIDIA's catalog says to do. */

export const Severities = ['healthy', 'info', 'warning', 'critical'] as const;
export type Severity = (typeof Severities)[number];

export const severityRank: Record<Severity, number> = { healthy: 0, info: 1, warning: 2, critical: 3 };

/** Recommended action, from mildest to strongest. The policy, not the classifier, decides what is done. */
export const Actions = ['none', 'monitor', 'restart_app', 'reboot', 'replace'] as const;
export type Action = (typeof Actions)[number];

export const actionRank: Record<Action, number> = {
  none: 0,
  monitor: 1,
  restart_app: 2,
  reboot: 3,
  replace: 4,
};

export const ClassificationSources = ['rules', 'llm', 'cache'] as const;
export type ClassificationSource = (typeof ClassificationSources)[number];

export const FindingKinds = [
  'xid',
  'ecc_dbe',
  'row_remap_failure',
  'sbe_storm',
  'retired_pages',
  'health',
  'nvlink',
  'thermal',
  'gpu_missing',
  'condition',
  'collection',
  'unknown',
] as const;
export type FindingKind = (typeof FindingKinds)[number];

/**
 * A node condition that is not about the GPUs (the EKS node monitoring agent's KernelReady, NetworkingReady,
 * StorageReady, ContainerRuntimeReady going False; node-problem-detector's KernelDeadlock …): a node problem,
 * alerted, never a GPU fault — no GPU remediation by default, never counted by the GPU circuit breaker.
 */
export const NODE_CONDITION = 'NODE_CONDITION';

export function isNodeProblem(f: { category: string }): boolean {
  return f.category === NODE_CONDITION;
}

/** The node's GPU severity: its most severe finding that is not a node problem ('healthy' when none). */
export function gpuSeverity(findings: readonly Pick<Finding, 'category' | 'severity'>[]): Severity {
  let worst: Severity = 'healthy';
  for (const f of findings) {
    if (!isNodeProblem(f) && severityRank[f.severity] > severityRank[worst]) worst = f.severity;
  }
  return worst;
}

export interface Finding {
  kind: FindingKind;
  /** `XID_CRITICAL_79`, `ECC_ERROR`, `GPU_MISSING`, an operator's custom category … */
  category: string;
  severity: Severity;
  action: Action;
  gpu?: number;
  xid?: number;
  /** The lines/values that prove it. */
  evidence: string[];
  /** One sentence a tired SRE can read. */
  explanation: string;
  source: ClassificationSource;
  /**
   * Stable identity of the fault on its node, for incident deduplication: `xid:79:gpu3`, `ecc_dbe:gpu0`,
   * `gpu_missing`, `collection`. Same fault on the next scan ⇒ same key.
   */
  key: string;
  /** The rules could not settle it (unknown XID, unrecognized text): a candidate for the LLM. */
  ambiguous?: boolean;
}

/** A node's verdict: the most severe finding wins; all findings are kept. */
export interface Verdict {
  node: string;
  category: string;
  severity: Severity;
  action: Action;
  xid?: number;
  gpu?: number;
  explanation: string;
  source: ClassificationSource;
  findings: Finding[];
}

/** The most severe finding first; ties broken by the stronger action, then by GPU index. */
export function compareFindings(a: Finding, b: Finding): number {
  return (
    severityRank[b.severity] - severityRank[a.severity] ||
    actionRank[b.action] - actionRank[a.action] ||
    (a.gpu ?? -1) - (b.gpu ?? -1)
  );
}

export function verdictOf(node: string, findings: Finding[]): Verdict {
  const sorted = [...findings].sort(compareFindings);
  const top = sorted[0];
  if (!top) {
    return {
      node,
      category: 'HEALTHY',
      severity: 'healthy',
      action: 'none',
      explanation: 'No GPU fault found.',
      source: 'rules',
      findings: [],
    };
  }
  return {
    node,
    category: top.category,
    severity: top.severity,
    action: top.action,
    xid: top.xid,
    gpu: top.gpu,
    explanation: top.explanation,
    source: top.source,
    findings: sorted,
  };
}

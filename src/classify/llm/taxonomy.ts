/**
 * The categories a model may answer with, and what each one means for severity and action. The model
 * names a category; this table (and the operator's policy) decides severity and action — never the model.
 */
import type { Action, FindingKind, Severity } from '../../domain/finding.js';
import type { ClassificationPolicy } from '../../domain/policy.js';

export interface CategoryInfo {
  name: string;
  severity: Severity;
  action: Action;
  kind: FindingKind;
  xid?: number;
  custom: boolean;
}

interface BuiltIn {
  name: string;
  description: string;
  severity: Severity;
  action: Action;
  kind: FindingKind;
}

/** Built-ins that are not XID-numbered; the AWS sample's names are kept so its dashboards still work. */
export const builtInCategories: readonly BuiltIn[] = [
  {
    name: 'ECC_ERROR',
    description: 'Uncorrectable (double-bit) ECC error, row-remap failure or pending page retirement.',
    severity: 'critical',
    action: 'reboot',
    kind: 'ecc_dbe',
  },
  {
    name: 'GPU_HEALTH_ERROR',
    description: 'A DCGM health check failed (FAIL) for a GPU subsystem.',
    severity: 'critical',
    action: 'reboot',
    kind: 'health',
  },
  {
    name: 'GPU_HEALTH_WARNING',
    description: 'A DCGM health check warned (WARN) without failing.',
    severity: 'warning',
    action: 'none',
    kind: 'health',
  },
  {
    name: 'NVLINK_ERROR',
    description: 'NVLink CRC, replay or recovery errors, or NVLink/NVSwitch fabric link problems.',
    severity: 'warning',
    action: 'monitor',
    kind: 'nvlink',
  },
  {
    name: 'GPU_MISSING',
    description:
      'Fewer GPUs visible than the node should have (a GPU fell off the bus or is not enumerated).',
    severity: 'critical',
    action: 'reboot',
    kind: 'gpu_missing',
  },
  {
    name: 'THERMAL_WARNING',
    description: 'GPU or memory temperature too high, thermal slowdown or throttling.',
    severity: 'warning',
    action: 'none',
    kind: 'thermal',
  },
  {
    name: 'HEALTHY',
    description: 'The evidence shows no GPU fault (benign or informational messages only).',
    severity: 'healthy',
    action: 'none',
    kind: 'unknown',
  },
];

/** XIDs EKS replaces the instance for rather than rebooting it. */
export const replaceXids: ReadonlySet<number> = new Set([74, 79, 119, 120, 121, 140]);

const xidCategoryPattern = /^XID_(CRITICAL|WARNING)_(\d{1,4})$/;

/** `XID_CRITICAL_79` → { level: 'CRITICAL', xid: 79 }; anything else → undefined. */
export function parseXidCategory(name: string): { level: 'CRITICAL' | 'WARNING'; xid: number } | undefined {
  const m = xidCategoryPattern.exec(name);
  if (!m) return undefined;
  return { level: m[1] as 'CRITICAL' | 'WARNING', xid: Number(m[2]) };
}

/**
 * Severity and action of a category name, or undefined when it is not in the taxonomy. An operator's
 * category wins over a built-in of the same name (their YAML is the more specific statement).
 */
export function categoryInfo(name: string, policy: ClassificationPolicy): CategoryInfo | undefined {
  const custom = policy.categories.find((c) => c.name === name);
  if (custom)
    return { name, severity: custom.severity, action: custom.action, kind: 'unknown', custom: true };
  const xidCat = parseXidCategory(name);
  if (xidCat) {
    const override = policy.xid[xidCat.xid];
    if (xidCat.level === 'CRITICAL') {
      const action = override?.action ?? (replaceXids.has(xidCat.xid) ? 'replace' : 'reboot');
      return { name, severity: 'critical', action, kind: 'xid', xid: xidCat.xid, custom: false };
    }
    return {
      name,
      severity: 'warning',
      action: override?.action ?? 'none',
      kind: 'xid',
      xid: xidCat.xid,
      custom: false,
    };
  }
  const builtIn = builtInCategories.find((c) => c.name === name);
  if (!builtIn) return undefined;
  return { name, severity: builtIn.severity, action: builtIn.action, kind: builtIn.kind, custom: false };
}

export interface OfferedCategory {
  name: string;
  description: string;
}

/**
 * The categories offered to the model for one node: XID categories only for the XIDs in its evidence
 * (so the tool schema's enum cannot name an XID the node never reported), the built-ins, and the operator's.
 */
export function offeredCategories(
  policy: ClassificationPolicy,
  evidenceXids: Iterable<number>,
): OfferedCategory[] {
  const out: OfferedCategory[] = [];
  for (const xid of [...new Set(evidenceXids)].sort((a, b) => a - b)) {
    out.push({
      name: `XID_CRITICAL_${xid}`,
      description: `XID ${xid} needing a GPU reset, reboot or replacement.`,
    });
    out.push({
      name: `XID_WARNING_${xid}`,
      description: `XID ${xid} that is application-level or recoverable.`,
    });
  }
  const customNames = new Set(policy.categories.map((c) => c.name));
  for (const b of builtInCategories) {
    if (!customNames.has(b.name)) out.push({ name: b.name, description: b.description });
  }
  for (const c of policy.categories) out.push({ name: c.name, description: c.description });
  return out;
}

/**
 * The operator's policy file (`POLICY_FILE`), YAML validated with zod. Every key is optional; what is
 * left out keeps the defaults of src/domain/policy.ts. Unknown keys are errors (a typo such as `mdoe`
 * must not silently fall back to a default that reboots machines).
 *
 * A full example:
 *
 * ```yaml
 * classification:
 *   # per-XID overrides of NVIDIA's catalog (severity: healthy|info|warning|critical,
 *   # action: none|monitor|restart_app|reboot|replace)
 *   xid: { "13": { severity: warning, action: none }, "79": { action: replace } }
 *   sbeStormThreshold: 1000      # volatile SBE ECC errors on one GPU ⇒ SBE storm (warning)
 *   thermalWarningC: 87          # GPU temperature ⇒ thermal warning
 *   nvlinkErrorThreshold: 100    # NVLink CRC/replay/recovery errors ⇒ NVLink finding
 * categories:                    # your own categories, described in words for the LLM
 *   - name: FABRIC_MANAGER_DOWN  # /^[A-Z][A-Z0-9_]*$/, not a built-in name
 *     description: nvidia-fabricmanager is not running, NVLink/NVSwitch fabric unavailable
 *     severity: critical
 *     action: reboot
 * remediation:
 *   rules:                       # first rule whose every matcher matches wins
 *     - match: { xid: 79 }       # matchers: category, xid, kind, severity, source (rules|llm)
 *       action: replace          # none|cordon|uncordon|drain|reboot|replace
 *       mode: auto               # auto|approve|off
 *     - match: { category: GPU_HEALTH_ERROR }
 *       action: reboot
 *       mode: approve
 *       force: false             # evict around a PDB after DRAIN_TIMEOUT (default false)
 *   escalation: { returnWithinHours: 24, maxRebootsPerFault: 1, maxRemediationsPerNode: 3, windowDays: 7 }
 *   llmDestructiveMode: approve  # mode for destructive actions on LLM-sourced categories
 * ```
 *
 * `categories` may also be written under `classification.categories`; both lists are merged.
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { Actions, FindingKinds, Severities } from '../domain/finding.js';
import { PolicyModes, RemediationActions } from '../domain/incident.js';
import {
  type CustomCategory,
  defaultClassificationPolicy,
  defaultEscalationPolicy,
  type Policy,
  type RemediationRule,
  type XidOverride,
} from '../domain/policy.js';

export class PolicyError extends Error {
  readonly code = 'POLICY_INVALID';
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`policy file ${file}: ${problems.join('; ')}`);
    this.name = 'PolicyError';
  }
}

/** Category names the classifier owns; an operator's category may not take one of them. */
export const builtInCategoryNames: readonly string[] = [
  'HEALTHY',
  'ECC_ERROR',
  'GPU_HEALTH_WARNING',
  'GPU_HEALTH_ERROR',
  'NVLINK_ERROR',
  'GPU_MISSING',
  'THERMAL_WARNING',
];
const builtInPattern = /^XID_(CRITICAL|WARNING)_\d+$/;

export function isBuiltInCategory(name: string): boolean {
  return builtInCategoryNames.includes(name) || builtInPattern.test(name);
}

const categoryName = z
  .string()
  .regex(/^[A-Z][A-Z0-9_]*$/, 'must match /^[A-Z][A-Z0-9_]*$/ (upper case, digits, underscores)');
const xidNumber = z.number().int().min(1).max(65535);

const XidOverrideSchema = z.strictObject({
  severity: z.enum(Severities).optional(),
  action: z.enum(Actions).optional(),
});

const CustomCategorySchema = z.strictObject({
  name: categoryName.refine((n) => !isBuiltInCategory(n), 'collides with a built-in category'),
  description: z.string().trim().min(1, 'a description is required (the LLM reads it)').max(2000),
  severity: z.enum(Severities),
  action: z.enum(Actions),
});

const RuleSchema = z.strictObject({
  match: z
    .strictObject({
      category: categoryName.optional(),
      xid: xidNumber.optional(),
      kind: z.enum(FindingKinds).optional(),
      severity: z.enum(Severities).optional(),
      source: z.enum(['rules', 'llm']).optional(),
    })
    .refine((m) => Object.values(m).some((v) => v !== undefined), 'needs at least one matcher'),
  action: z.enum(RemediationActions),
  mode: z.enum(PolicyModes),
  force: z.boolean().optional(),
});

const PolicySchema = z.strictObject({
  classification: z
    .strictObject({
      xid: z
        .record(z.string(), XidOverrideSchema)
        .superRefine((rec, ctx) => {
          for (const k of Object.keys(rec)) {
            if (!/^\d+$/.test(k) || !xidNumber.safeParse(Number(k)).success) {
              ctx.addIssue({
                code: 'custom',
                path: [k],
                message: 'XID keys must be numbers from 1 to 65535',
              });
            }
          }
        })
        .optional(),
      sbeStormThreshold: z.number().int().positive().optional(),
      thermalWarningC: z.number().min(0).max(150).optional(),
      nvlinkErrorThreshold: z.number().int().positive().optional(),
      categories: z.array(CustomCategorySchema).optional(),
    })
    .optional(),
  categories: z.array(CustomCategorySchema).optional(),
  remediation: z
    .strictObject({
      rules: z.array(RuleSchema).optional(),
      escalation: z
        .strictObject({
          returnWithinHours: z.number().positive().optional(),
          maxRebootsPerFault: z.number().int().min(0).optional(),
          maxRemediationsPerNode: z.number().int().positive().optional(),
          windowDays: z.number().positive().optional(),
        })
        .optional(),
      llmDestructiveMode: z.enum(PolicyModes).optional(),
    })
    .optional(),
});

/** The policy used when no POLICY_FILE is given. A fresh copy each call: callers may not share mutations. */
export function defaultPolicy(): Policy {
  return {
    classification: { ...defaultClassificationPolicy, xid: {}, categories: [] },
    remediation: { rules: [], escalation: { ...defaultEscalationPolicy }, llmDestructiveMode: 'approve' },
  };
}

/** `['remediation', 'rules', 2, 'mode']` → `remediation.rules[2].mode`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(top level)' : out;
}

/** Parse policy YAML text; `file` names the source in errors. */
export function parsePolicy(text: string, file = '<policy>'): Policy {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new PolicyError(
      file,
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        const where = pos ? `line ${pos.line}, column ${pos.col}` : 'unknown position';
        return `YAML syntax error at ${where}: ${e.message.split('\n')[0]}`;
      }),
    );
  }
  const data: unknown = doc.toJS() ?? {};
  const parsed = PolicySchema.safeParse(data);
  if (!parsed.success) {
    throw new PolicyError(
      file,
      parsed.error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`),
    );
  }
  const p = parsed.data;
  const categories: CustomCategory[] = [...(p.classification?.categories ?? []), ...(p.categories ?? [])];
  const dupes = categories.filter((c, i) => categories.findIndex((o) => o.name === c.name) !== i);
  if (dupes.length > 0) {
    throw new PolicyError(
      file,
      dupes.map((d) => `categories: ${d.name} is defined more than once`),
    );
  }
  const xid: Record<number, XidOverride> = {};
  for (const [k, v] of Object.entries(p.classification?.xid ?? {})) {
    const o: XidOverride = {};
    if (v.severity) o.severity = v.severity;
    if (v.action) o.action = v.action;
    xid[Number(k)] = o;
  }
  const def = defaultPolicy();
  const rules: RemediationRule[] = (p.remediation?.rules ?? []).map((r) => {
    const match: RemediationRule['match'] = {};
    for (const [k, v] of Object.entries(r.match)) if (v !== undefined) Object.assign(match, { [k]: v });
    const rule: RemediationRule = { match, action: r.action, mode: r.mode };
    if (r.force !== undefined) rule.force = r.force;
    return rule;
  });
  const c = p.classification;
  return {
    classification: {
      xid,
      sbeStormThreshold: c?.sbeStormThreshold ?? def.classification.sbeStormThreshold,
      thermalWarningC: c?.thermalWarningC ?? def.classification.thermalWarningC,
      nvlinkErrorThreshold: c?.nvlinkErrorThreshold ?? def.classification.nvlinkErrorThreshold,
      categories,
    },
    remediation: {
      rules,
      escalation: {
        ...def.remediation.escalation,
        ...Object.fromEntries(
          Object.entries(p.remediation?.escalation ?? {}).filter(([, v]) => v !== undefined),
        ),
      },
      llmDestructiveMode: p.remediation?.llmDestructiveMode ?? def.remediation.llmDestructiveMode,
    },
  };
}

/** Load and validate the policy file at `path`; no path ⇒ the defaults. Throws PolicyError. */
export function loadPolicy(path?: string): Policy {
  if (path === undefined || path === '') return defaultPolicy();
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'file not found'
        : code === 'EISDIR'
          ? 'is a directory, expected a YAML file'
          : code === 'EACCES'
            ? 'permission denied'
            : `cannot be read (${code ?? String(err)})`;
    throw new PolicyError(path, [why]);
  }
  return parsePolicy(text, path);
}

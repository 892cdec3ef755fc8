/**
 * The model's answer is untrusted input: parsed strictly, checked against the taxonomy and against the
 * hard facts of the node. Anything that fails is rejected with a reason and the rules' verdict stands.
 */
import { z } from 'zod';
import { Severities, severityRank, type Verdict } from '../../domain/finding.js';
import type { ClassificationPolicy } from '../../domain/policy.js';
import { type CategoryInfo, categoryInfo } from './taxonomy.js';

export const RejectionReasons = [
  'not_json',
  'not_object',
  'action_field',
  'schema',
  'unknown_category',
  'xid_not_in_evidence',
  'inconsistent',
  'gpu_not_on_node',
  'low_confidence',
  'contradicts_critical',
] as const;
export type RejectionReason = (typeof RejectionReasons)[number];

export const explanationMaxChars = 300;
export const defaultMinConfidence = 0.5;

/** The tool's input schema, strict: an extra key (an `action`, say) is a rejection, not something to ignore. */
export const ToolAnswer = z.strictObject({
  category: z.string().min(1).max(100),
  severity: z.enum(Severities),
  // Absent and null mean the same: a node-wide fault has no GPU, most faults have no XID.
  gpu: z.number().int().min(0).nullable().optional(),
  xid: z.number().int().min(0).nullable().optional(),
  confidence: z.number().min(0).max(1),
  // Over-long explanations are cut rather than rejected: the category is what matters.
  explanation: z.string().transform((s) => s.slice(0, explanationMaxChars)),
});
export type ToolAnswer = z.infer<typeof ToolAnswer>;

export interface ValidationContext {
  policy: ClassificationPolicy;
  evidenceXids: ReadonlySet<number>;
  gpuIndices: ReadonlySet<number>;
  /** The rules' verdict: a critical finding must not be argued away by log text. */
  rulesVerdict: Verdict;
  minConfidence?: number;
}

export interface ValidatedAnswer {
  category: string;
  info: CategoryInfo;
  gpu?: number;
  xid?: number;
  confidence: number;
  explanation: string;
}

export type ValidationResult =
  | { ok: true; answer: ValidatedAnswer }
  | { ok: false; reason: RejectionReason; detail: string };

const actionKeys = /^(action|actions|recommended_?action|remediation|remedy|next_?step)s?$/i;

const reject = (reason: RejectionReason, detail: string): ValidationResult => ({ ok: false, reason, detail });

export function validateAnswer(input: unknown, ctx: ValidationContext): ValidationResult {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch {
      return reject('not_json', `answer is not JSON: ${input.slice(0, 80)}`);
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return reject(
      'not_object',
      `answer is ${Array.isArray(value) ? 'an array' : typeof value}, not an object`,
    );
  }
  const actionKey = Object.keys(value).find((k) => actionKeys.test(k));
  if (actionKey) return reject('action_field', `answer tries to choose an action (${actionKey})`);

  const parsed = ToolAnswer.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return reject(
      'schema',
      `answer does not match the tool schema: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`,
    );
  }
  const a = parsed.data;

  const info = categoryInfo(a.category, ctx.policy);
  if (!info) return reject('unknown_category', `category ${a.category} is not in the taxonomy`);
  if (info.xid !== undefined && !ctx.evidenceXids.has(info.xid)) {
    return reject(
      'xid_not_in_evidence',
      `category ${a.category} names XID ${info.xid}, absent from the evidence`,
    );
  }
  const xid = a.xid ?? undefined;
  if (xid !== undefined && xid !== 0 && !ctx.evidenceXids.has(xid)) {
    return reject('xid_not_in_evidence', `answer names XID ${xid}, absent from the evidence`);
  }
  if (info.xid !== undefined && xid !== undefined && xid !== 0 && xid !== info.xid) {
    return reject('inconsistent', `category ${a.category} disagrees with xid ${xid}`);
  }
  const gpu = a.gpu ?? undefined;
  if (gpu !== undefined && !ctx.gpuIndices.has(gpu)) {
    return reject('gpu_not_on_node', `answer names GPU ${gpu}, which the node does not report`);
  }
  const floor = ctx.minConfidence ?? defaultMinConfidence;
  if (a.confidence < floor) return reject('low_confidence', `confidence ${a.confidence} below ${floor}`);

  // Any critical rules finding, settled or not: the model may rename an unsettled critical fault
  // (GPU_HEALTH_ERROR → an operator's category) but never talk the node below critical.
  const critical = ctx.rulesVerdict.findings.some((f) => f.severity === 'critical');
  if (critical && severityRank[info.severity] < severityRank.critical) {
    return reject(
      'contradicts_critical',
      `answer ${a.category} (${info.severity}) would downgrade a critical fault the rules found`,
    );
  }

  return {
    ok: true,
    answer: {
      category: a.category,
      info,
      gpu,
      xid: info.xid ?? (xid !== 0 ? xid : undefined),
      confidence: a.confidence,
      explanation: a.explanation,
    },
  };
}

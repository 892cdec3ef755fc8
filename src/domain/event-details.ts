/**
 * Reading progress events defensively. Events are typed where they are published, but a reader that turns
 * them into text (the Slack thread) must degrade a line, never crash, on a detail of the wrong type: each
 * step's details go through a schema whose every field falls back to "absent" when it does not have the
 * contract's type (src/domain/events.ts).
 */
import { z } from 'zod';
import { type DiagNodeResult, type DiagResult, DiagStatuses } from './diag.js';
import {
  type KubeflowJobRef,
  type ProgressEvent,
  type ProgressStep,
  progressEvent,
  SafetyLimitKinds,
  type StepDetails,
} from './events.js';
import { PolicyModes, RemediationActions } from './incident.js';

/** A field that is dropped (absent) rather than rejected when it has another type. */
const opt = <T extends z.ZodType>(schema: T) => schema.optional().catch(undefined);

/** A non-empty string: an empty one says nothing a line could print. */
const text = () => opt(z.string().min(1));
/** A finite number (zod refuses NaN and Infinity). */
const num = () => opt(z.number());
const flag = () => opt(z.boolean());
const action = () => opt(z.enum(RemediationActions));
const oneOf = <const T extends readonly [string, ...string[]]>(values: T) => opt(z.enum(values));

const JobRef = z.object({ kind: z.string(), namespace: z.string(), name: z.string() });

/** The well-formed entries of a job list; a list that is not one reads as empty. */
const jobList = z
  .array(JobRef.nullable().catch(null))
  .catch([])
  .transform((jobs) => jobs.filter((j): j is KubeflowJobRef => j !== null));

const jobFields = { kind: text(), namespace: text(), name: text() };

const level = () => opt(z.union([z.literal(1), z.literal(2), z.literal(3)]));
const DiagRow = z.object({
  test: z.string(),
  gpu: z.number().int().min(0),
  status: z.enum(DiagStatuses),
  info: z.string().optional(),
});
const DiagNodeRow = DiagRow.omit({ gpu: true });
/** The well-formed rows of a diagnostic table; a row that is not one is dropped, a list that is not one reads as empty. */
const rows = <T>(row: z.ZodType<T>) =>
  z
    .array(row.nullable().catch(null))
    .catch([])
    .transform((list) => list.filter((r): r is T => r !== null));
const diagResults = rows<DiagResult>(DiagRow);
const diagNodeResults = rows<DiagNodeResult>(DiagNodeRow);

const shapes = {
  detected: { category: text(), xid: num(), gpu: num(), severity: text(), explanation: text() },
  policy: { action: action(), mode: oneOf([...PolicyModes, 'manual']), rule: text(), reason: text() },
  approval_needed: { action: action(), reason: text() },
  approved: { action: action(), mode: oneOf(['manual']), reason: text() },
  cordoned: { alreadyCordoned: flag() },
  drain_started: { pods: num(), skipped: num() },
  pod_evicted: { pod: text(), evicted: num(), total: num() },
  pdb_wait: {
    pdb: text(),
    pod: text(),
    evicted: num(),
    total: num(),
    waitedMs: num(),
    retryInMs: num(),
  },
  drained: { evicted: num(), forced: num() },
  gpu_reset: {
    gpus: opt(z.array(z.number().int().nonnegative())),
    wholeNode: flag(),
    pod: text(),
  },
  reboot_issued: { instanceId: text(), reissued: flag() },
  node_back: { bootId: text(), previousBootId: text() },
  settle_wait: {
    node: text(),
    waitingFor: oneOf(['node_ready', 'node', 'gpus', 'agent', 'scan', 'replacement']),
    missing: text(),
    waitedMs: num(),
    timeoutMs: num(),
  },
  gpu_scan: { healthy: flag(), gpus: num(), expected: num(), problem: text(), node: text() },
  replace_issued: {
    instanceId: text(),
    method: oneOf(['asg', 'karpenter', 'ec2', 'auto-mode']),
    asg: text(),
    nodePool: text(),
    reissued: flag(),
  },
  replacement_ready: { newNode: text(), group: text(), onDemand: flag() },
  diag_started: { level: level(), pod: text(), expectedMs: num(), resumed: flag() },
  diag_progress: { level: level(), waitedMs: num(), expectedMs: num() },
  diag_result: {
    level: level(),
    verdict: oneOf(['pass', 'warn', 'fail', 'unavailable', 'error']),
    results: diagResults.optional(),
    nodeWide: diagNodeResults.optional(),
    message: text(),
  },
  uncordoned: { leftCordoned: flag() },
  kubeflow_jobs: { jobs: jobList.optional() },
  kubeflow_job_running: { ...jobFields, status: oneOf(['running', 'succeeded']) },
  kubeflow_job_not_running: { ...jobFields, status: text(), reason: text() },
  resolved: {
    action: action(),
    reason: text(),
    onDemand: flag(),
    byAutoRepair: oneOf(['rebooted', 'replaced']),
  },
  escalated: { reason: text(), to: oneOf(['reboot', 'replace', 'human']) },
  failed: { reason: text(), stage: text() },
  cancelled: { reason: text() },
  dismissed: { reason: text() },
  safety_limit: {
    limit: oneOf(SafetyLimitKinds),
    action: action(),
    unhealthy: num(),
    total: num(),
    thresholdPct: num(),
    maxNodes: num(),
    count: num(),
    perHour: num(),
    windowMinutes: num(),
    inFlight: num(),
    maxConcurrent: num(),
    label: text(),
    message: text(),
  },
  excluded: { reason: text(), until: num(), by: text(), action: action() },
  auto_repair_deferred: {
    condition: text(),
    status: text(),
    reason: text(),
    owner: oneOf(['managed-node-group', 'auto-mode']),
    nodeGroup: text(),
    waitMs: num(),
    windowMs: num(),
    action: action(),
  },
  auto_repair_outcome: {
    outcome: oneOf(['rebooted', 'replaced', 'not_acted']),
    condition: text(),
    windowMs: num(),
    policyAction: action(),
  },
};

/** Details that are not an object at all read as none. */
const asObject = (v: unknown) => (typeof v === 'object' && v !== null && !Array.isArray(v) ? v : {});

const lenient = <S extends ProgressStep, T extends z.core.$ZodLooseShape>(step: S, shape: T) =>
  z.object({ step: z.literal(step), details: z.preprocess(asObject, z.object(shape)) });

/**
 * Each step with its details read leniently. The annotation checks that every member yields a step with
 * exactly the contract's details; `everyStepRead` below checks that no step is left out.
 */
export const StepDetailsSchema = z.discriminatedUnion('step', [
  lenient('detected', shapes.detected),
  lenient('policy', shapes.policy),
  lenient('approval_needed', shapes.approval_needed),
  lenient('approved', shapes.approved),
  lenient('cordoned', shapes.cordoned),
  lenient('drain_started', shapes.drain_started),
  lenient('pod_evicted', shapes.pod_evicted),
  lenient('pdb_wait', shapes.pdb_wait),
  lenient('drained', shapes.drained),
  lenient('gpu_reset', shapes.gpu_reset),
  lenient('reboot_issued', shapes.reboot_issued),
  lenient('node_back', shapes.node_back),
  lenient('settle_wait', shapes.settle_wait),
  lenient('gpu_scan', shapes.gpu_scan),
  lenient('replace_issued', shapes.replace_issued),
  lenient('replacement_ready', shapes.replacement_ready),
  lenient('diag_started', shapes.diag_started),
  lenient('diag_progress', shapes.diag_progress),
  lenient('diag_result', shapes.diag_result),
  lenient('uncordoned', shapes.uncordoned),
  lenient('kubeflow_jobs', shapes.kubeflow_jobs),
  lenient('kubeflow_job_running', shapes.kubeflow_job_running),
  lenient('kubeflow_job_not_running', shapes.kubeflow_job_not_running),
  lenient('resolved', shapes.resolved),
  lenient('escalated', shapes.escalated),
  lenient('failed', shapes.failed),
  lenient('cancelled', shapes.cancelled),
  lenient('dismissed', shapes.dismissed),
  lenient('safety_limit', shapes.safety_limit),
  lenient('excluded', shapes.excluded),
  lenient('auto_repair_deferred', shapes.auto_repair_deferred),
  lenient('auto_repair_outcome', shapes.auto_repair_outcome),
]) satisfies z.ZodType<StepDetails>;

/** A step of ProgressSteps without a member above makes this `false`, which does not compile. */
const everyStepRead: [Exclude<ProgressStep, z.output<typeof StepDetailsSchema>['step']>] extends [never]
  ? true
  : false = true;
void everyStepRead;

/**
 * The event with its details read through its step's schema: a field of another type than the contract's
 * is dropped (the line degrades), never thrown. A step outside the contract is left as it is, for the
 * reader's catch-all line.
 */
export function readEvent(event: ProgressEvent): ProgressEvent {
  const { step, details, ...base } = event;
  const read = readStepDetails(step, details);
  return read ? progressEvent(base, read) : event;
}

/**
 * A step and its details read leniently from anything (an event from outside the process, a test): the
 * details as `readEvent` reads them; undefined when `step` is not a ProgressStep.
 */
export function readStepDetails(step: unknown, details: unknown = {}): StepDetails | undefined {
  const read = StepDetailsSchema.safeParse({ step, details });
  return read.success ? read.data : undefined;
}

/** A step with no details (every detail is optional): what a line says when it knows nothing more. */
export function withoutDetails(step: ProgressStep): StepDetails {
  const read = readStepDetails(step);
  if (!read) throw new Error(`${step} is not a progress step`);
  return read;
}

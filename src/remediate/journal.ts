/**
 * The remediation journal's `detail`: what each step row records, under one schema per step. Writers are
 * typed by these schemas; readers get rows parsed by them, so the engine's resume, the escalation history
 * and the deferral watcher read typed fields instead of checking types by hand.
 *
 * A field means the same thing (and has the same type) in every step that records it, so each step's schema
 * picks its fields from one dictionary, and a row's detail is typed as `JournalDetail` (every field, all
 * optional): a reader of the `reboot` row reads `detail.bootIdBefore` without narrowing first.
 *
 * A row that does not match its step's schema (hand-edited, or written by another version) is reported with
 * the incident, sequence and step that name it, and read without its bad fields: the reader carries on, and
 * the row in the store is left as it is (nothing is lost).
 */
import { z } from 'zod';
import { DiagStatuses } from '../domain/diag.js';
import { PolicyModes, RemediationActions } from '../domain/incident.js';
import { AgentRecord, GpuExpectation } from './settle.js';
import { StepNames } from './state-machine.js';

/** Rows beside the plan's steps: the run's plan, an escalation (to reboot or replace), the do-not-disrupt release, a deferral. */
export const BookkeepingSteps = ['plan', 'escalate', 'release_guard', 'auto_repair'] as const;
export const JournalSteps = [...StepNames, ...BookkeepingSteps] as const;
export type JournalStep = (typeof JournalSteps)[number];

const TrainingJobRecord = z.object({
  kind: z.string(),
  apiVersion: z.string(),
  namespace: z.string(),
  name: z.string(),
});
/** A GPU as the last scan before the repair read it (domain GpuIdentity). */
export const GpuIdentityRecord = z.object({
  index: z.number(),
  uuid: z.string().optional(),
  pciBusId: z.string().optional(),
  serial: z.string().optional(),
  xids: z.array(z.number()).optional(),
});

/** One test on one GPU of a DCGM diagnostic (RMA records read these rows as they are). */
const DiagResultRecord = z.object({
  test: z.string(),
  gpu: z.number().int().min(0),
  status: z.enum(DiagStatuses),
  info: z.string().optional(),
});
/** A test's verdict that names no GPU. */
const DiagNodeRecord = DiagResultRecord.omit({ gpu: true });
/** What following a job found: `PyTorchJob ml/llama-ft` and its last status. */
const JobResult = z.object({ job: z.string(), status: z.string() });

/** Every field a journal row records, with its one meaning; each is optional (a row grows from `started` to `done`). */
const fields = {
  // Any row: a dry run, what the step would have done, why it was skipped or ended.
  dryRun: z.boolean().optional(),
  would: z.string().optional(),
  skipped: z.string().optional(),
  reason: z.string().optional(),
  /** The run ended here and a human decides, or the fault goes to the next action of the escalation ladder. */
  needsHuman: z.boolean().optional(),
  escalateTo: z.enum(['reboot', 'replace']).optional(),

  // plan: who decided what (RunPlan).
  action: z.enum(RemediationActions).optional(),
  mode: z.enum(PolicyModes).optional(),
  actor: z.string().optional(),
  trigger: z.enum(['auto', 'manual']).optional(),
  force: z.boolean().optional(),
  /** plan (reset): the GPU a person asked to reset; reset: the GPU the incident names. */
  gpu: z.number().int().nonnegative().optional(),

  // cordon
  wasUnschedulable: z.boolean().optional(),
  cordonedByUs: z.boolean().optional(),
  alreadyCordoned: z.boolean().optional(),
  /** Whether the node carried karpenter.sh/do-not-disrupt before gpu-medic came (false: ours to remove). */
  hadDoNotDisrupt: z.boolean().optional(),
  gpuExpectation: GpuExpectation.optional(),
  /** The node's GPUs before the repair (RMA evidence: UUID, bus id, XIDs). */
  gpuIds: z.array(GpuIdentityRecord).optional(),
  /** The node's zone (`topology.kubernetes.io/zone`), for the repair record: a replaced node is gone later. */
  zone: z.string().optional(),

  // kubeflow_snapshot, follow_jobs
  jobs: z.array(z.union([TrainingJobRecord, JobResult])).optional(),

  // drain: pod names, `namespace/name`.
  evicted: z.array(z.string()).optional(),
  forced: z.array(z.string()).optional(),
  blocked: z.array(z.string()).optional(),
  pods: z.array(z.string()).optional(),

  // reboot, wait_node_back
  bootIdBefore: z.string().nullable().optional(),
  bootId: z.string().nullable().optional(),
  ready: z.boolean().optional(),
  instanceId: z.string().optional(),
  reissued: z.boolean().optional(),
  agentPodsBefore: z.array(AgentRecord).optional(),

  // reset: what was reset (all GPUs on NVSwitch types), where it ran, what nvidia-smi said, the exporter label.
  gpusReset: z.array(z.number()).optional(),
  wholeNode: z.boolean().optional(),
  resetPod: z.string().optional(),
  exitCode: z.number().optional(),
  output: z.string().optional(),
  exporterLabelBefore: z.string().nullable().optional(),

  // verify_scan, verify_replacement
  node: z.string().optional(),
  healthy: z.boolean().optional(),
  gpus: z.number().optional(),
  waitedMs: z.number().optional(),
  settled: z.boolean().optional(),
  waitingFor: z.enum(['node_ready', 'node', 'gpus', 'agent', 'scan', 'replacement']).optional(),
  missing: z.string().optional(),
  category: z.string().optional(),
  explanation: z.string().optional(),

  // diagnose: the DCGM level run, per test and GPU what it found, and the verdicts that name no GPU.
  level: z.union([z.literal(1), z.literal(2), z.literal(3)]).optional(),
  results: z.array(DiagResultRecord).optional(),
  nodeWide: z.array(DiagNodeRecord).optional(),
  verdict: z.enum(['pass', 'warn', 'fail']).optional(),

  // uncordon
  alreadySchedulable: z.boolean().optional(),

  // replace, wait_replacement
  method: z.enum(['asg', 'karpenter', 'ec2', 'auto-mode']).optional(),
  nodesBefore: z.array(z.string()).optional(),
  group: z.string().optional(),
  autoScalingGroup: z.string().optional(),
  instanceType: z.string().optional(),
  instanceState: z.string().nullable().optional(),
  replacement: z.string().nullable().optional(),
  onDemand: z.boolean().optional(),
  note: z.string().optional(),
  /** replace: the EC2 tags written on the instance before it is terminated (RMA evidence), and how it went. */
  tags: z.record(z.string(), z.string()).optional(),
  tagged: z.boolean().optional(),
  tagError: z.string().optional(),

  // escalate
  to: z.enum(['reboot', 'replace']).optional(),

  // release_guard
  result: z.enum(['done', 'gone']).optional(),

  // auto_repair: the condition EKS acts on, whose repair it is, the window, and what gpu-medic's policy chose.
  condition: z.string().optional(),
  status: z.string().optional(),
  owner: z.enum(['managed-node-group', 'auto-mode']).optional(),
  nodeGroup: z.string().optional(),
  waitMs: z.number().optional(),
  windowMs: z.number().optional(),
  until: z.number().optional(),
  instanceIdBefore: z.string().nullable().optional(),
  reasonForAction: z.string().optional(),
  outcome: z.enum(['rebooted', 'replaced', 'not_acted']).optional(),
  at: z.number().optional(),
};
type Field = keyof typeof fields;

const common = ['dryRun', 'would', 'skipped', 'reason', 'needsHuman', 'escalateTo'] as const;

/** The fields each step records (beside the common ones). */
const recorded = {
  plan: ['action', 'mode', 'actor', 'trigger', 'force', 'gpu'],
  cordon: [
    'wasUnschedulable',
    'cordonedByUs',
    'alreadyCordoned',
    'hadDoNotDisrupt',
    'gpuExpectation',
    'gpuIds',
    'zone',
  ],
  kubeflow_snapshot: ['jobs'],
  drain: ['evicted', 'forced', 'blocked', 'pods'],
  reset: [
    'gpu',
    'gpusReset',
    'wholeNode',
    'resetPod',
    'exitCode',
    'output',
    'exporterLabelBefore',
    'instanceType',
  ],
  reboot: ['bootIdBefore', 'instanceId', 'reissued', 'gpuExpectation', 'agentPodsBefore'],
  wait_node_back: ['bootIdBefore', 'bootId', 'ready'],
  verify_scan: ['healthy', 'gpus', 'waitedMs', 'settled', 'waitingFor', 'missing', 'category', 'explanation'],
  diagnose: ['level', 'results', 'nodeWide', 'verdict'],
  uncordon: ['alreadySchedulable'],
  replace: [
    'method',
    'instanceId',
    'nodesBefore',
    'group',
    'autoScalingGroup',
    'instanceType',
    'reissued',
    'instanceState',
    'tags',
    'tagged',
    'tagError',
  ],
  wait_replacement: ['replacement', 'group', 'onDemand', 'note'],
  verify_replacement: ['node', 'healthy', 'gpus', 'waitedMs', 'settled', 'waitingFor', 'missing', 'category'],
  follow_jobs: ['jobs'],
  resolve: [],
  escalate: ['to'],
  release_guard: ['result'],
  auto_repair: [
    'condition',
    'status',
    'owner',
    'nodeGroup',
    'waitMs',
    'windowMs',
    'until',
    'bootIdBefore',
    'instanceIdBefore',
    'action',
    'mode',
    'reasonForAction',
    'force',
    'outcome',
    'at',
  ],
} as const satisfies Record<JournalStep, readonly Field[]>;

type Recorded<S extends JournalStep> = (typeof recorded)[S][number] | (typeof common)[number];

/** Any field of the journal: what a row's detail is, as readers see it. */
export const JournalDetail = z.object(fields);
export type JournalDetail = z.output<typeof JournalDetail>;

/** The detail a step's row records: its fields and the common ones. */
export type JournalDetailOf<S extends JournalStep> = Pick<JournalDetail, Recorded<S>>;

const schemas = new Map(
  JournalSteps.map((step) => {
    const mask: { [F in Field]?: true } = {};
    for (const f of [...common, ...recorded[step]]) mask[f] = true;
    return [step, JournalDetail.pick(mask)];
  }),
);

/** The step's schema: its fields; the fields of other steps are not that step's and are left out. */
export function journalSchema(step: JournalStep): z.ZodType<JournalDetail> {
  return schemas.get(step) ?? JournalDetail;
}

export function isJournalStep(step: string): step is JournalStep {
  return JournalSteps.some((s) => s === step);
}

/** A journal row that does not read as its step says, named so it can be found and fixed. */
export interface JournalProblem {
  incidentId: string;
  seq: number;
  step: string;
  message: string;
}

export type ReportJournalProblem = (problem: JournalProblem) => void;

/** The row as stored: its step name and its parsed JSON, both still to be checked. */
export interface StoredDetail {
  incidentId: string;
  seq: number;
  step: string;
  detail: unknown;
}

function objectOf(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? Object.fromEntries(Object.entries(value))
    : undefined;
}

/**
 * The detail of a stored row under its step's schema. A field that does not match is reported and left out
 * of what the reader sees; the reader never gets an exception for a bad row.
 */
export function readDetail(row: StoredDetail, report: ReportJournalProblem): JournalDetail {
  const where = { incidentId: row.incidentId, seq: row.seq, step: row.step };
  const raw = objectOf(row.detail ?? {});
  if (!raw) {
    report({ ...where, message: `${describe(where)}: detail is not a JSON object; read as empty` });
    return {};
  }
  if (typeof raw.unreadableDetail === 'string') {
    report({
      ...where,
      message: `${describe(where)}: its detail was not a JSON object when the step finished; the store keeps it as unreadableDetail`,
    });
  }
  if (!isJournalStep(row.step)) {
    report({ ...where, message: `${describe(where)}: unknown step; its detail is not read` });
    return {};
  }
  const schema = journalSchema(row.step);
  const first = schema.safeParse(raw);
  if (first.success) return first.data;
  const bad = new Set(first.error.issues.map((i) => String(i.path[0] ?? '')));
  const issues = first.error.issues.map((i) => `${i.path.join('.') || '(detail)'}: ${i.message}`).join('; ');
  report({ ...where, message: `${describe(where)}: ${issues}; read without ${[...bad].join(', ')}` });
  const kept = Object.fromEntries(Object.entries(raw).filter(([k]) => !bad.has(k)));
  const second = schema.safeParse(kept);
  return second.success ? second.data : {};
}

function describe(w: { incidentId: string; seq: number; step: string }): string {
  return `journal row ${w.incidentId}#${w.seq} (${w.step})`;
}

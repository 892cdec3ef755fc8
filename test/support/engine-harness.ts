/** Test-only: everything the engine and the services need, in memory, sharing one clock and one power switch. */
import type { ProgressEvent } from '../../src/domain/events.js';
import { ProgressBus } from '../../src/domain/events.js';
import type { Finding } from '../../src/domain/finding.js';
import type { Incident, IncidentState, RemediationAction } from '../../src/domain/incident.js';
import type { Policy } from '../../src/domain/policy.js';
import { defaultClassificationPolicy, defaultEscalationPolicy } from '../../src/domain/policy.js';
import { type EngineConfig, RemediationEngine } from '../../src/remediate/engine.js';
import type { DiagPort, NewIncident } from '../../src/remediate/ports.js';
import {
  type Authorize,
  type AutoRepairOptions,
  RemediationServices,
  type SafetyConfig,
} from '../../src/remediate/services.js';
import { PlanStep } from '../../src/remediate/state-machine.js';
import { FakeClock } from './fake-clock.js';
import { FakeHealth, FakeWorld } from './fake-world.js';
import {
  MemoryAuditLog,
  MemoryExclusionStore,
  MemoryIncidentStore,
  MemoryKvStore,
  MemoryStepStore,
} from './memory-stores.js';
import { Power } from './power.js';

export function testPolicy(overrides: Partial<Policy['remediation']> = {}): Policy {
  return {
    classification: defaultClassificationPolicy,
    remediation: {
      rules: [],
      escalation: defaultEscalationPolicy,
      llmDestructiveMode: 'approve',
      ...overrides,
    },
  };
}

export interface HarnessOptions {
  engine?: Partial<EngineConfig>;
  safety?: Partial<SafetyConfig>;
  policy?: Policy;
  authorize?: Authorize;
  isLeader?: () => boolean;
  autoRepair?: AutoRepairOptions;
  /** DCGM diagnostics for the `diagnose` step (with `engine.postRepairDiag`). */
  diag?: DiagPort;
}

export function createHarness(options: HarnessOptions = {}) {
  const power = new Power();
  const clock = new FakeClock();
  const world = new FakeWorld(clock, power);
  const health = new FakeHealth(power, world);
  const incidents = new MemoryIncidentStore(power, () => clock.now());
  const steps = new MemoryStepStore(power);
  const exclusions = new MemoryExclusionStore(power);
  const kv = new MemoryKvStore(power);
  const audit = new MemoryAuditLog(power);
  const bus = new ProgressBus((error) => {
    throw error;
  });
  const events: ProgressEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const dryRun = options.safety?.dryRun ?? false;
  const newEngine = () =>
    new RemediationEngine({
      cluster: world.cluster,
      cloud: world.cloud,
      health,
      incidents,
      steps,
      exclusions,
      audit,
      clock,
      bus,
      ...(options.isLeader ? { isLeader: options.isLeader } : {}),
      ...(options.diag ? { diag: options.diag } : {}),
      config: { dryRun, ...options.engine },
    });
  const engine = newEngine();
  const services = new RemediationServices({
    cluster: world.cluster,
    incidents,
    steps,
    exclusions,
    audit,
    kv,
    clock,
    bus,
    engine,
    policy: options.policy ?? testPolicy(),
    authorize: options.authorize ?? (() => true),
    safety: options.safety ?? {},
    ...(options.autoRepair ? { autoRepair: options.autoRepair } : {}),
  });

  /** An incident as the monitor would open it. */
  function openIncident(node: string, fault: Partial<NewIncident> = {}): Incident {
    const now = clock.now();
    return incidents.create({
      node,
      instanceId: world.nodes.get(node)?.instanceId,
      faultKey: 'xid:79:gpu3',
      category: 'XID_CRITICAL_79',
      severity: 'critical',
      recommendedAction: 'replace',
      plannedAction: 'replace',
      mode: 'auto',
      xid: 79,
      gpu: 3,
      explanation: 'GPU has fallen off the bus.',
      source: 'rules',
      evidence: ['NVRM: Xid (PCI:0000:53:00): 79, GPU has fallen off the bus.'],
      state: 'detected',
      preexisting: false,
      firstSeen: now,
      lastSeen: now,
      count: 1,
      ...fault,
    });
  }

  /** Claims an incident for a run the way the services do, without starting it. */
  function claim(id: string, action: RemediationAction, state: IncidentState): void {
    incidents.update(id, { plannedAction: action });
    incidents.transition(id, ['detected', 'awaiting_approval'], state, 'test claim');
    const row = steps.begin(
      id,
      PlanStep,
      { action, actor: 'monitor', trigger: 'auto', reason: 'test', force: false, dryRun },
      clock.now(),
    );
    steps.finish(row.id, 'done', {}, clock.now());
  }

  function stateOf(id: string): IncidentState | undefined {
    return incidents.get(id)?.state;
  }

  return {
    power,
    clock,
    world,
    health,
    incidents,
    steps,
    exclusions,
    kv,
    audit,
    bus,
    events,
    engine,
    newEngine,
    services,
    openIncident,
    claim,
    stateOf,
  };
}

export type Harness = ReturnType<typeof createHarness>;

export function eccFinding(gpu = 0): Finding {
  return {
    kind: 'ecc_dbe',
    category: 'ECC_ERROR',
    severity: 'critical',
    action: 'reboot',
    gpu,
    evidence: [`DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{gpu="${gpu}"} 2`],
    explanation: 'Uncorrectable ECC error in GPU memory.',
    source: 'rules',
    key: `ecc_dbe:gpu${gpu}`,
  };
}

export const kubeflowJob = {
  kind: 'PyTorchJob',
  apiVersion: 'kubeflow.org/v1',
  namespace: 'ml',
  name: 'llama-ft',
};

/** A 10-node p5 group in one Auto Scaling group; gpu-0 carries a training pod behind a PDB, a web pod, a DaemonSet pod and a static pod. */
export function p5Cluster(options: HarnessOptions = {}, pdbBlocks = 2): Harness {
  const h = createHarness(options);
  for (let i = 0; i < 10; i++) {
    h.world.addNode({
      name: `gpu-${i}`,
      instanceId: `i-0${i}`.padEnd(19, '0'),
      nodeGroup: 'p5',
      asg: 'asg-p5',
    });
  }
  h.world.addPod({ node: 'gpu-0', namespace: 'ml', name: 'llama-ft-worker-0', pdbBlocks, job: kubeflowJob });
  h.world.addPod({ node: 'gpu-0', name: 'web-1' });
  h.world.addPod({ node: 'gpu-0', namespace: 'gpu-operator', name: 'dcgm-exporter-x', daemonSet: true });
  h.world.addPod({ node: 'gpu-0', namespace: 'kube-system', name: 'static-gpu-0', mirror: true });
  h.world.jobStatuses.set('PyTorchJob/ml/llama-ft', ['restarting', 'restarting', 'running']);
  return h;
}

/** An ECC DBE incident planned for a reboot (openIncident overrides). */
export const eccIncident = {
  faultKey: 'ecc_dbe:gpu0',
  category: 'ECC_ERROR',
  xid: undefined,
  gpu: 0,
  recommendedAction: 'reboot' as const,
  plannedAction: 'reboot' as const,
};

/** The progress steps published so far, in order. */
export function stepsOf(h: Harness): string[] {
  return h.events.map((e) => e.step);
}

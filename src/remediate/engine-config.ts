/** The remediation engine's configuration, dependencies and run result (engine.ts runs the plans). */
import type { Logger } from 'pino';
import type { DiagLevel } from '../domain/diag.js';
import type { ProgressBus } from '../domain/events.js';
import type { IncidentState } from '../domain/incident.js';
import type {
  AuditLog,
  Clock,
  CloudPort,
  ClusterPort,
  DiagPort,
  ExclusionStore,
  HealthCheckPort,
  IncidentStore,
  StepStore,
} from './ports.js';

/** How the end of a Karpenter / Auto Mode replace with nothing pending reads (thread, incident, audit). */
export const ON_DEMAND_REASON = 'replaced — the pool provisions on demand (no pod is waiting for a GPU node)';

export interface EngineConfig {
  dryRun: boolean;
  /** DRAIN_TIMEOUT: how long a PDB may block eviction before a human is asked. */
  drainTimeoutMs: number;
  /** How long to wait for a new boot ID and Ready after a reboot. */
  rebootTimeoutMs: number;
  /**
   * After a crash between "reboot started" and "reboot done", how long to watch for the reboot to show
   * (NotReady or a new boot ID) before concluding the call never reached EC2 and issuing it again.
   */
  rebootGraceMs: number;
  replaceTimeoutMs: number;
  /**
   * GPU_SETTLE_TIMEOUT: after a reboot (or on a replacement node), how long the settle gate waits for the GPUs
   * to be allocatable, a GPU agent pod Ready on the new boot and a complete scan (settle.ts).
   */
  settleTimeoutMs: number;
  /** How long to follow a training job after the node is back before reporting it is not running. */
  jobTimeoutMs: number;
  pollMs: number;
  /** Cap of the PDB retry backoff. */
  maxBackoffMs: number;
  /** Attempts of a step whose port call throws, before the incident fails. */
  maxStepAttempts: number;
  /** POST_REPAIR_DIAG: the DCGM diagnostic level run before uncordon after a repair; undefined = off. */
  postRepairDiag?: DiagLevel;
  /** How often a running diagnostic says it is still running in the thread. */
  diagProgressMs: number;
}

export const defaultEngineConfig: EngineConfig = {
  dryRun: false,
  drainTimeoutMs: 15 * 60_000,
  rebootTimeoutMs: 20 * 60_000,
  rebootGraceMs: 2 * 60_000,
  replaceTimeoutMs: 30 * 60_000,
  settleTimeoutMs: 15 * 60_000,
  jobTimeoutMs: 30 * 60_000,
  pollMs: 10_000,
  maxBackoffMs: 30_000,
  maxStepAttempts: 3,
  diagProgressMs: 5 * 60_000,
};

export interface EngineDeps {
  cluster: ClusterPort;
  cloud: CloudPort;
  health: HealthCheckPort;
  /** DCGM diagnostics in the node's DCGM pod; without one, a planned `diagnose` step says it cannot run. */
  diag?: DiagPort;
  incidents: IncidentStore;
  steps: StepStore;
  exclusions: ExclusionStore;
  audit: AuditLog;
  clock: Clock;
  bus: ProgressBus;
  /** Only the Lease holder acts; checked before every step. */
  isLeader?: () => boolean;
  config?: Partial<EngineConfig>;
  logger?: Logger;
}

export interface RunResult {
  incidentId: string;
  state: IncidentState | undefined;
  /** Why the run stopped without reaching an end state. */
  stopped?: 'not_leader' | 'already_running' | 'not_found' | 'not_claimed' | 'superseded' | 'aborted';
}

/**
 * The evidence of one repair of one GPU: what an AWS support case (RMA) asks for — which instance, which GPU
 * (UUID, serial, PCI bus id), which faults, what the diagnostics said, when, and how it ended. One record per
 * GPU and repair (reset, reboot or replace), written when the remediation ends.
 */

/** One DCGM diagnostic test's result for this GPU (the `diagnose` step's results). */
export interface RepairDiagResult {
  test: string;
  status: 'pass' | 'fail' | 'warn' | 'skip';
  info?: string;
}

export interface RepairRecord {
  incidentId: string;
  /** `reset`, `reboot` or `replace`. */
  action: string;
  node: string;
  instanceId?: string;
  instanceType?: string;
  /** The node's zone (`topology.kubernetes.io/zone`). */
  zone?: string;
  /** DCGM index; undefined for a node-level fault where no GPU was named. */
  gpuIndex?: number;
  gpuUuid?: string;
  gpuSerial?: string;
  pciBusId?: string;
  /** XIDs seen on this GPU before the repair, ascending. */
  xids: number[];
  /** This is the GPU the fault names (other rows of the same repair are GPUs reset or seen with XIDs too). */
  faulty: boolean;
  faultKey: string;
  category: string;
  diagLevel?: string;
  diag: RepairDiagResult[];
  detectedAt: number;
  startedAt: number;
  endedAt: number;
  /** The incident's end: resolved, escalated, failed, cancelled. */
  outcome: string;
  reason?: string;
}

import type { HealthState } from '../domain/gpu.js';
import type {
  ExporterMode,
  FaultOptions,
  NodeState,
  NvlinkCounter,
  PersistentFault,
} from './cluster-types.js';
import type { CounterSet } from './dcgm-exporter.js';
import type { KubePod } from './k8s-objects.js';
import { EXPORTER_DEPLOY_LABEL, SimGpuResets, type StageResult } from './nvidia-smi.js';
import { kernelPciAddress, resetAfterReboot, type SimGpu } from './sim-gpu.js';
import { defaultKernelText } from './xid-text.js';

/**
 * What GPU fault injection needs of the cluster: node and GPU lookup, the effects of a GPU change, and (to
 * clear faults and run the exporter) the node's pods, conditions and diagnostics.
 */
export interface GpuFaultsHost {
  /** The node's state; throws for an unknown node. */
  state(node: string): NodeState;
  /** The node's GPU; throws for an unknown index. */
  gpu(s: NodeState, index: number): SimGpu;
  /** Re-renders what the node's exporter serves. */
  gpuChanged(s: NodeState): void;
  /** Re-advertises the node's GPU resources (after a GPU fell off the bus). */
  syncAllocatable(s: NodeState): void;
  /** The cluster runs its DaemonSets and workloads (else there is no exporter pod to bring back). */
  workloads(): boolean;
  exporterPod(node: string): KubePod | undefined;
  deletePod(pod: KubePod): void;
  createExporterPod(s: NodeState): void;
  nodeLabel(node: string, key: string): string | undefined;
  /** GPUs still allocated to a pod read busy again. */
  reapplyAllocationsLoad(s: NodeState): void;
  /** Takes back the node conditions injected with setCondition. */
  resetConditions(s: NodeState): void;
  /** Takes back the `dcgmi diag` failures injected on the node. */
  clearDiag(node: string): void;
}

/** Tags a persistent fault with its GPU: a reset of that GPU does not cure it either. */
function onGpu(gpu: number, apply: () => void): PersistentFault {
  return Object.assign(apply, { gpu });
}

/**
 * Fault injection into a node's GPUs and its dcgm-exporter, and the way back: clearing every fault, and
 * nvidia-smi GPU resets. A `persistent` fault is recorded on the node and comes back after a reboot (a real
 * hardware defect), and after a reset of its GPU, so escalation can be tested.
 */
export class GpuFaults {
  /** The simulated driver's GPU resets: injected failures (`failNext`) and the resets done. */
  readonly resets = new SimGpuResets();

  constructor(private readonly host: GpuFaultsHost) {}

  /**
   * `opts.gpuInstance`: the XID is raised in a MIG GPU instance of that id (an application fault on a MIG GPU);
   * the driver then names it in the kernel line (`Xid (PCI:0000:53:00 GPU-I:07): 13`).
   */
  injectXid(
    node: string,
    gpu: number,
    xid: number,
    message?: string,
    opts: FaultOptions & { gpuInstance?: number } = {},
  ): void {
    const s = this.host.state(node);
    const g = this.host.gpu(s, gpu);
    g.xidLast = xid;
    g.xidCounts[xid] = (g.xidCounts[xid] ?? 0) + 1;
    const instance =
      opts.gpuInstance !== undefined ? ` GPU-I:${String(opts.gpuInstance).padStart(2, '0')}` : '';
    s.kernelLog.push(
      `NVRM: Xid (PCI:${kernelPciAddress(g)}${instance}): ${xid}, pid='<unknown>', name=<unknown>, ${message ?? defaultKernelText(xid)}`,
    );
    this.host.gpuChanged(s);
    if (opts.persistent) {
      const gpuInstance = opts.gpuInstance;
      s.persistent.push(
        onGpu(gpu, () =>
          this.injectXid(node, gpu, xid, message, gpuInstance !== undefined ? { gpuInstance } : {}),
        ),
      );
    }
  }

  injectEcc(node: string, gpu: number, counts: { sbe?: number; dbe?: number } & FaultOptions): void {
    const s = this.host.state(node);
    const g = this.host.gpu(s, gpu);
    const sbe = counts.sbe ?? 0;
    const dbe = counts.dbe ?? 0;
    g.eccSbeVolatile += sbe;
    g.eccSbeAggregate += sbe;
    g.eccDbeVolatile += dbe;
    g.eccDbeAggregate += dbe;
    if (dbe > 0) {
      // On HBM GPUs an uncorrectable error remaps a row; the remap takes effect at the next GPU reset.
      g.uncorrectableRemappedRows += dbe;
      g.rowRemapPending = 1;
    }
    this.host.gpuChanged(s);
    if (counts.persistent) s.persistent.push(onGpu(gpu, () => this.injectEcc(node, gpu, { sbe, dbe })));
  }

  injectRowRemapFailure(node: string, gpu: number, opts: FaultOptions = {}): void {
    const s = this.host.state(node);
    this.host.gpu(s, gpu).rowRemapFailure = 1;
    this.host.gpuChanged(s);
    if (opts.persistent) s.persistent.push(onGpu(gpu, () => this.injectRowRemapFailure(node, gpu)));
  }

  injectNvlinkErrors(
    node: string,
    gpu: number,
    n: number,
    opts: FaultOptions & { counter?: NvlinkCounter } = {},
  ): void {
    const s = this.host.state(node);
    const g = this.host.gpu(s, gpu);
    switch (opts.counter ?? 'crcFlit') {
      case 'crcFlit':
        g.nvlinkCrcFlitErrors += n;
        break;
      case 'crcData':
        g.nvlinkCrcDataErrors += n;
        break;
      case 'replay':
        g.nvlinkReplayErrors += n;
        break;
      case 'recovery':
        g.nvlinkRecoveryErrors += n;
        break;
    }
    this.host.gpuChanged(s);
    if (opts.persistent) {
      const counter = opts.counter;
      s.persistent.push(onGpu(gpu, () => this.injectNvlinkErrors(node, gpu, n, counter ? { counter } : {})));
    }
  }

  setTemperature(node: string, gpu: number, celsius: number): void {
    const s = this.host.state(node);
    this.host.gpu(s, gpu).temperatureC = celsius;
    this.host.gpuChanged(s);
  }

  /** The GPU falls off the bus: gone from DCGM (and the exporter) and from allocatable `nvidia.com/gpu`. */
  dropGpu(node: string, gpu: number, opts: FaultOptions = {}): void {
    const s = this.host.state(node);
    const g = this.host.gpu(s, gpu);
    if (g.present) {
      g.present = false;
      s.kernelLog.push(
        `NVRM: GPU ${g.pciBusId.replace(/^0000/, '').toLowerCase()}: GPU has fallen off the bus.`,
      );
      this.host.gpuChanged(s);
      this.host.syncAllocatable(s);
    }
    if (opts.persistent) s.persistent.push(onGpu(gpu, () => this.dropGpu(node, gpu)));
  }

  /**
   * DCGM health of one GPU: visible through `gpuState` (the dcgm-server source) and, on an exporter with
   * the full counter set, DCGM_EXP_GPU_HEALTH_STATUS; pair it with setCondition for the node-condition source.
   */
  setHealth(node: string, gpu: number, health: HealthState, message?: string, opts: FaultOptions = {}): void {
    const s = this.host.state(node);
    const g = this.host.gpu(s, gpu);
    g.health = health;
    g.healthMessage = message;
    this.host.gpuChanged(s);
    if (opts.persistent) s.persistent.push(onGpu(gpu, () => this.setHealth(node, gpu, health, message)));
  }

  /** The GPU does not come back from the next reboot (and stays gone, whatever reset is tried). */
  failGpuOnReboot(node: string, gpu: number): void {
    const s = this.host.state(node);
    this.host.gpu(s, gpu);
    s.persistent.push(() => this.dropGpu(node, gpu));
  }

  setExporter(node: string, mode: ExporterMode): void {
    const s = this.host.state(node);
    if (!s.gpuNode) throw new Error(`node ${node} has no GPUs and no dcgm-exporter`);
    s.exporterMode = mode;
    const pod = this.host.exporterPod(node);
    if (mode === 'missing' && pod) this.host.deletePod(pod);
    if (mode !== 'missing' && !pod && this.host.workloads()) this.host.createExporterPod(s);
  }

  /** One node's exporter counters file (undefined = the cluster's); the next scrape shows it. */
  setCounters(node: string, counters: CounterSet | undefined): void {
    const s = this.host.state(node);
    if (!s.gpuNode) throw new Error(`node ${node} has no GPUs and no dcgm-exporter`);
    s.counters = counters;
    this.host.gpuChanged(s);
  }

  /** Back to a healthy node: faults, persistent faults, injected conditions and exporter mode all cleared. */
  clear(node: string): void {
    const s = this.host.state(node);
    this.host.clearDiag(node);
    s.persistent = [];
    s.kernelLog = [];
    for (const g of s.gpus) {
      resetAfterReboot(g);
      g.temperatureC = 30;
      g.rowRemapFailure = 0;
    }
    this.host.reapplyAllocationsLoad(s);
    this.host.gpuChanged(s);
    this.host.resetConditions(s);
    this.host.syncAllocatable(s);
    if (s.gpuNode) this.setExporter(node, 'ok');
  }

  /** Runs `nvidia-smi ARGS` on the node, as root in a privileged pod there (a reset changes its GPUs). */
  nvidiaSmi(node: string, args: readonly string[]): StageResult {
    const s = this.host.state(node);
    return this.resets.run(args, {
      name: s.name,
      instanceType: s.group.instanceType,
      gpus: s.gpus,
      holders: (g) => this.gpuHolders(s, g),
      replayPersistent: (gpus) => {
        for (const fault of [...s.persistent]) if (fault.gpu !== undefined && gpus.has(fault.gpu)) fault();
      },
      changed: () => this.host.gpuChanged(s),
    });
  }

  /** Pods holding a handle on the GPU: the workload allocated to it, the exporter unless the label pauses it. */
  private gpuHolders(s: NodeState, g: SimGpu): string[] {
    const out: string[] = [];
    const owner = s.allocations.get(g.index);
    if (owner) out.push(owner);
    const exporter = this.host.exporterPod(s.name);
    const deploy = this.host.nodeLabel(s.name, EXPORTER_DEPLOY_LABEL);
    if (exporter && (deploy === undefined || deploy === 'true'))
      out.push(`${exporter.metadata.namespace}/${exporter.metadata.name}`);
    return out;
  }
}

import type { HealthState } from '../domain/gpu.js';
import type { FaultOptions, NodeState, NvlinkCounter, PersistentFault } from './cluster-types.js';
import { kernelPciAddress, type SimGpu } from './sim-gpu.js';
import { defaultKernelText } from './xid-text.js';

/** What GPU fault injection needs of the cluster: node and GPU lookup, and the effects of a GPU change. */
export interface GpuFaultsHost {
  /** The node's state; throws for an unknown node. */
  state(node: string): NodeState;
  /** The node's GPU; throws for an unknown index. */
  gpu(s: NodeState, index: number): SimGpu;
  /** Re-renders what the node's exporter serves. */
  gpuChanged(s: NodeState): void;
  /** Re-advertises the node's GPU resources (after a GPU fell off the bus). */
  syncAllocatable(s: NodeState): void;
}

/** Tags a persistent fault with its GPU: a reset of that GPU does not cure it either. */
function onGpu(gpu: number, apply: () => void): PersistentFault {
  return Object.assign(apply, { gpu });
}

/**
 * Fault injection into a node's GPUs. A `persistent` fault is recorded on the node and comes back after a
 * reboot (a real hardware defect), and after a reset of its GPU, so escalation can be tested.
 */
export class GpuFaults {
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
}

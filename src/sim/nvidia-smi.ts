/**
 * `nvidia-smi` on a simulated node, as the driver's tool behaves for what gpu-medic runs: `-L` (list the GPUs)
 * and `-r` / `--gpu-reset [-i N]`.
 *
 * A reset needs no process holding the GPU: a workload pod allocated to it, or the dcgm-exporter on the node
 * (its NVML handles count like any monitoring client's) unless the GPU Operator's deploy label
 * `nvidia.com/gpu.deploy.dcgm-exporter` pauses it. The DCGM host-engine pod that runs the command is where
 * nvidia-smi runs, so the simulator does not count it. On NVSwitch instance types (HGX boards) one GPU
 * cannot be reset alone; a reset without `-i` resets every GPU and the switches together. A reset clears
 * the GPU's XID state, volatile ECC, NVLink counters and health, then the faults injected as persistent on that
 * GPU (a defect a reset cannot cure) come back. A GPU that fell off the bus cannot be reset ("GPU is lost").
 */
import { perGpuResetAllowed } from '../domain/instance-gpus.js';
import { resetAfterReboot, type SimGpu } from './sim-gpu.js';

/** The GPU Operator's node label that schedules (`true`) or pauses (any other value) the exporter there. */
export const EXPORTER_DEPLOY_LABEL = 'nvidia.com/gpu.deploy.dcgm-exporter';

/** What nvidia-smi needs of one simulated node. */
export interface NvidiaSmiNode {
  name: string;
  instanceType: string;
  /** The node's GPUs, live (a reset changes them). */
  gpus: SimGpu[];
  /** What holds a handle on this GPU (pod names); empty when a reset may go ahead. */
  holders(gpu: SimGpu): string[];
  /** Re-applies the faults injected as persistent on these GPUs, after their reset. */
  replayPersistent(gpus: ReadonlySet<number>): void;
  /** The GPU state changed (re-render what the exporter serves). */
  changed(): void;
}

export interface StageResult {
  out: string[];
  err?: string;
  code: number;
}

/** One reset the simulated driver carried out. */
export interface GpuResetRecord {
  node: string;
  /** GPU indices reset; all of the node's on a whole-node reset. */
  gpus: number[];
  wholeNode: boolean;
}

const IN_USE_TEXT =
  'device is currently being used by one or more other processes (e.g., Fabric Manager, CUDA application, ' +
  'graphics application such as an X server, or a monitoring application such as another instance of ' +
  'nvidia-smi). Please first kill all processes using this device and all compute applications running in ' +
  'the system.';

// nvidia-smi's documented return codes.
const EXIT = { notSupported: 3, notFound: 6, gpuLost: 15, other: 255, usage: 2 } as const;

/** The simulated driver's reset bookkeeping: injected failures and the resets done, per cluster. */
export class SimGpuResets {
  private readonly failures = new Map<string, number>();
  readonly done: GpuResetRecord[] = [];

  /** The next `times` resets on the node fail (the driver cannot bring the GPU back). */
  failNext(node: string, times = 1): void {
    this.failures.set(node, (this.failures.get(node) ?? 0) + times);
  }

  private takeFailure(node: string): boolean {
    const n = this.failures.get(node) ?? 0;
    if (n <= 0) return false;
    this.failures.set(node, n - 1);
    return true;
  }

  run(args: readonly string[], node: NvidiaSmiNode): StageResult {
    if (args.includes('-L') || args.includes('--list-gpus'))
      return {
        out: node.gpus.filter((g) => g.present).map((g) => `GPU ${g.index}: ${g.model} (UUID: ${g.uuid})`),
        code: 0,
      };
    if (!args.includes('-r') && !args.includes('--gpu-reset'))
      return { out: [], err: 'sim nvidia-smi: only -L and -r/--gpu-reset are simulated\n', code: EXIT.usage };
    const id = idArgument(args);
    if (id === null) return { out: [], err: 'Invalid combination of input arguments.\n', code: EXIT.usage };
    let targets: SimGpu[];
    if (id === undefined) targets = node.gpus;
    else {
      const g = node.gpus.find((x) => String(x.index) === id || x.uuid === id || x.pciBusId === id);
      if (!g) return { out: ['No devices were found'], code: EXIT.notFound };
      if (!perGpuResetAllowed(node.instanceType))
        return {
          out: [
            `Unable to reset GPU ${g.pciBusId} alone: on an NVSwitch system the GPUs and NVSwitches are reset together.`,
            'Run the reset without -i to reset all GPUs.',
          ],
          code: EXIT.notSupported,
        };
      targets = [g];
    }
    const lost = targets.find((g) => !g.present);
    if (lost)
      return {
        out: [
          `Unable to determine the device handle for GPU ${lost.pciBusId}: GPU is lost.  Reboot the system to recover this GPU`,
        ],
        code: EXIT.gpuLost,
      };
    const busy = targets.filter((g) => node.holders(g).length > 0);
    if (busy.length > 0)
      return {
        out: [
          'The following GPUs could not be reset:',
          ...busy.map((g) => `  GPU ${g.pciBusId}: In use by another client`),
          '',
          `${busy.length} ${busy.length === 1 ? IN_USE_TEXT : IN_USE_TEXT.replace('device is', 'devices are')}`,
        ],
        code: EXIT.other,
      };
    if (this.takeFailure(node.name))
      return {
        out: [
          'The following GPUs could not be reset:',
          ...targets.map((g) => `  GPU ${g.pciBusId}: Unknown Error`),
        ],
        code: EXIT.other,
      };
    for (const g of targets) resetAfterReboot(g);
    node.replayPersistent(new Set(targets.map((g) => g.index)));
    node.changed();
    this.done.push({ node: node.name, gpus: targets.map((g) => g.index), wholeNode: id === undefined });
    return {
      out: [...targets.map((g) => `GPU ${g.pciBusId} was successfully reset.`), 'All done.'],
      code: 0,
    };
  }
}

/** The `-i` / `--id` value; undefined without one, null when the flag has no value. */
function idArgument(args: readonly string[]): string | undefined | null {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a.startsWith('--id=')) return a.slice(5) || null;
    if (a === '-i' || a === '--id') return args[i + 1] ?? null;
  }
  return undefined;
}

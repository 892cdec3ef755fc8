/**
 * Child-process entry of the simulator (started by process.ts with an IPC channel): starts the
 * simulator with the options in argv[2] (JSON), reports `ready` with its env and control URL, answers
 * CPU-usage questions, and exits when asked to close — or when the parent goes away, so a crashed
 * benchmark never leaves a simulator behind.
 */
import { z } from 'zod';
import { describeIssues } from './control-api.js';
import { GpuShapes } from './gpu-shapes.js';
import { type Simulator, startSimulator } from './index.js';

export const ChildOptions = z
  .object({
    nodes: z.number().int().min(0).optional(),
    gpusPerNode: z.number().int().min(1).optional(),
    instanceType: z.string().optional(),
    clusterName: z.string().optional(),
    region: z.string().optional(),
    seed: z.number().int().optional(),
    rebootDelayMs: z.number().min(0).optional(),
    replaceDelayMs: z.number().min(0).optional(),
    terminateDelayMs: z.number().min(0).optional(),
    rescheduleDelayMs: z.number().min(0).optional(),
    devicePluginDelayMs: z.number().min(0).optional(),
    exporterReadyDelayMs: z.number().min(0).optional(),
    dcgmServer: z
      .union([
        z.boolean(),
        z
          .object({
            style: z.enum(['eks-agent', 'gpu-operator']).optional(),
            namespace: z.string().min(1).optional(),
            shell: z.boolean().optional(),
          })
          .strict(),
      ])
      .optional(),
    workloads: z.boolean().optional(),
    gpuShapes: z.array(z.enum(GpuShapes)).min(1).optional(),
    timeSlicingReplicas: z.number().int().min(2).optional(),
    timeSlicingRename: z.boolean().optional(),
    slack: z.boolean().optional(),
    kubeconfigPath: z.string().optional(),
    logLimit: z.number().int().min(0).optional(),
    controlPort: z.number().int().min(0).max(65535).optional(),
    /** HTTPS with the test-only CA in the kubeconfig (tls-fixture.ts). */
    tls: z.boolean().optional(),
    /** A Prometheus over the exporters (prometheus-server.ts); PROMETHEUS_URL in env. */
    prometheus: z
      .union([
        z.boolean(),
        z
          .object({ scrapeIntervalMs: z.number().min(1).optional(), sigv4Region: z.string().optional() })
          .strict(),
      ])
      .optional(),
  })
  .strict();
export type ChildOptions = z.infer<typeof ChildOptions>;

/** Messages the parent sends. */
export const ParentMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('cpu'), id: z.number() }),
  z.object({ type: z.literal('close') }),
]);
export type ParentMessage = z.infer<typeof ParentMessage>;

/** Messages the child sends. */
export type ChildMessage =
  | { type: 'ready'; env: Record<string, string>; controlUrl: string; pid: number }
  | { type: 'error'; message: string }
  | { type: 'cpu'; id: number; cpu: NodeJS.CpuUsage; rss: number };

function reply(m: ChildMessage): void {
  process.send?.(m);
}

async function main(): Promise<void> {
  if (!process.send) {
    console.error('sim-main: start me through startSimulatorProcess() (needs an IPC channel)');
    process.exit(2);
  }
  let sim: Simulator | undefined;
  let exiting = false;
  const exit = async (code: number): Promise<void> => {
    if (exiting) return;
    exiting = true;
    try {
      await sim?.close();
    } finally {
      if (process.connected) process.disconnect();
      process.exit(code);
    }
  };
  // The parent died or closed the channel: nobody can stop us any more, so stop now.
  process.on('disconnect', () => void exit(0));
  process.on('message', (raw) => {
    const m = ParentMessage.safeParse(raw);
    if (!m.success) return;
    if (m.data.type === 'close') void exit(0);
    else reply({ type: 'cpu', id: m.data.id, cpu: process.cpuUsage(), rss: process.memoryUsage.rss() });
  });

  let raw: unknown;
  try {
    raw = JSON.parse(process.argv[2] ?? '{}');
  } catch (e) {
    reply({ type: 'error', message: `simulator options are not JSON: ${(e as Error).message}` });
    await exit(2);
    return;
  }
  const parsed = ChildOptions.safeParse(raw);
  if (!parsed.success) {
    reply({ type: 'error', message: `bad simulator options: ${describeIssues(parsed.error)}` });
    await exit(2);
    return;
  }
  try {
    sim = await startSimulator({ ...parsed.data, controlPort: parsed.data.controlPort ?? 0 });
  } catch (e) {
    reply({ type: 'error', message: `simulator failed to start: ${(e as Error).message}` });
    await exit(1);
    return;
  }
  const controlUrl = sim.control?.url;
  if (!controlUrl) throw new Error('the control API is required in a child simulator');
  reply({ type: 'ready', env: sim.env, controlUrl, pid: process.pid });
}

void main();

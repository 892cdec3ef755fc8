/**
 * The reset path: `nvidia-smi --gpu-reset` on the drained node, then the settle gate (verify_scan) and uncordon.
 * No EC2 call: the node keeps its instance, its boot and its non-GPU pods.
 *
 * nvidia-smi refuses a reset while anything holds the GPU. The drain took the workload pods; the dcgm-exporter
 * keeps NVML handles open, so it is paused for the reset with the GPU Operator's deploy label
 * (`nvidia.com/gpu.deploy.dcgm-exporter`, the mechanism NVIDIA's mig-manager uses) and the label is put back
 * right after, whatever the outcome, so the exporter is there for the settle gate's scan. The DCGM host engine
 * is where the command runs. On NVSwitch instance types one GPU cannot be reset alone: all GPUs and switches are
 * reset together.
 */
import { perGpuResetAllowed } from '../domain/instance-gpus.js';
import { escalateToAfter } from './escalation.js';
import type { GpuResetRun } from './ports.js';
import { done, pause, requireNode, type StepContext, type StepOutcome } from './step-kit.js';

/** The GPU Operator's node label that schedules (`true`) or pauses (another value) dcgm-exporter there. */
export const EXPORTER_DEPLOY_LABEL = 'nvidia.com/gpu.deploy.dcgm-exporter';
export const EXPORTER_PAUSED_VALUE = 'paused-for-gpu-reset';

/** Which GPUs a reset takes: one when the topology allows it and a GPU is known, else the whole node. */
export function resetScope(
  instanceType: string | undefined,
  gpu: number | undefined,
): { gpu: number | undefined; wholeNode: boolean } {
  if (gpu === undefined || !perGpuResetAllowed(instanceType)) return { gpu: undefined, wholeNode: true };
  return { gpu, wholeNode: false };
}

/** Tries of a reset nvidia-smi refuses because the GPU is still in use (one poll interval apart). */
export const IN_USE_ATTEMPTS = 4;

function inUse(run: GpuResetRun): boolean {
  return run.kind === 'ran' && run.exitCode !== 0 && /In use by another client/.test(run.output);
}

/** The first line of nvidia-smi's words that says what went wrong, for the thread. */
function firstProblem(output: string): string {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const i = lines.findIndex((l) => /could not|unable|in use|lost|error|not supported/i.test(l));
  if (i < 0) return lines[0] ?? '';
  // "The following GPUs could not be reset:" names them on the next line, with the reason.
  const line = lines[i] ?? '';
  return line.endsWith(':') && lines[i + 1] ? `${line} ${lines[i + 1]}` : line;
}

export async function reset(ctx: StepContext): Promise<StepOutcome> {
  const { cluster } = ctx.deps;
  const node = await requireNode(ctx);
  const scope = resetScope(node.instanceType, ctx.plan.gpu ?? ctx.incident.gpu);
  const which = scope.wholeNode ? 'all GPUs' : `GPU ${scope.gpu}`;
  if (ctx.plan.dryRun)
    return done(
      { would: `nvidia-smi --gpu-reset${scope.gpu !== undefined ? ` -i ${scope.gpu}` : ''}` },
      {
        step: 'gpu_reset',
        details: { ...(scope.gpu !== undefined ? { gpus: [scope.gpu] } : {}), wholeNode: scope.wholeNode },
      },
    );
  // A resumed run reads the label it saw first: its own pause must not be taken for the node's setting.
  const labelBefore =
    ctx.resumed?.detail.exporterLabelBefore !== undefined
      ? ctx.resumed.detail.exporterLabelBefore
      : ((await cluster.getNodeLabel(node.name, EXPORTER_DEPLOY_LABEL)) ?? null);
  ctx.begin({
    ...(scope.gpu !== undefined ? { gpu: scope.gpu } : {}),
    wholeNode: scope.wholeNode,
    exporterLabelBefore: labelBefore,
    ...(node.instanceType ? { instanceType: node.instanceType } : {}),
  });
  ctx.signal.throwIfAborted();
  await cluster.setNodeLabel(node.name, EXPORTER_DEPLOY_LABEL, EXPORTER_PAUSED_VALUE);
  let run: Awaited<ReturnType<typeof cluster.resetGpus>>;
  try {
    run = await cluster.resetGpus(node.name, scope.gpu, ctx.signal);
    // The GPU Operator takes the paused exporter off the node within seconds, not at once: while its
    // handles are still open nvidia-smi says "In use by another client". Try again a few times.
    for (let attempt = 1; attempt < IN_USE_ATTEMPTS && inUse(run); attempt++) {
      await pause(ctx, ctx.config.pollMs);
      run = await cluster.resetGpus(node.name, scope.gpu, ctx.signal);
    }
  } finally {
    await cluster.setNodeLabel(node.name, EXPORTER_DEPLOY_LABEL, labelBefore);
  }
  const next = escalateToAfter('reset');
  if (run.kind === 'unavailable')
    return {
      kind: 'end',
      state: 'escalated',
      reason: `Could not reset ${which} on ${node.name}: ${run.reason}. It stays cordoned; the fault goes to the escalation ladder (${next}).`,
      detail: { escalateTo: next, reason: run.reason },
    };
  if (run.exitCode !== 0)
    return {
      kind: 'end',
      state: 'escalated',
      reason: `nvidia-smi could not reset ${which} on ${node.name} (exit ${run.exitCode}: ${firstProblem(run.output)}). It stays cordoned; the fault goes to the escalation ladder (${next}).`,
      detail: {
        escalateTo: next,
        exitCode: run.exitCode,
        output: run.output.slice(0, 2000),
        resetPod: run.pod,
      },
    };
  const gpus =
    scope.gpu !== undefined ? [scope.gpu] : Array.from({ length: node.expectedGpus ?? 0 }, (_, i) => i);
  return done(
    { gpusReset: gpus, wholeNode: scope.wholeNode, resetPod: run.pod, exitCode: 0 },
    { step: 'gpu_reset', details: { gpus, wholeNode: scope.wholeNode, pod: run.pod } },
  );
}

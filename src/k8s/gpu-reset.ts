/**
 * `nvidia-smi --gpu-reset` on a node, run by exec (argv, no shell) in a privileged pod already on that node:
 * by default the DCGM host-engine pod (the EKS node monitoring agent's `dcgm-server`, the GPU Operator's
 * `nvidia-dcgm`), whose container sees the GPUs as root. Exec into an existing pod needs only `pods/exec` on
 * that pod's namespace; creating a privileged pod per reset would need `pods` create and a namespace that admits
 * privileged pods, which gpu-medic's own namespace should not.
 */
import type { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { GpuResetRun } from '../remediate/ports.js';
import { isPodReady, matchesLabelSelector } from './pod-index.js';

/** The pods the reset may run in; the first Ready one on the node is used. */
export interface ResetPodSelector {
  /** undefined ⇒ any namespace. */
  namespace?: string;
  selector: string;
  /** The container to exec in; default the pod's first. */
  container?: string;
}

/** DCGM host-engine pods, the same defaults as the dcgm-server source. */
export const DEFAULT_RESET_POD_SELECTORS: readonly ResetPodSelector[] = [
  { selector: 'k8s-app=dcgm-server' },
  { selector: 'app=nvidia-dcgm' },
];

/** nvidia-smi's argv for a reset: one GPU with `-i`, the whole node without. */
export function gpuResetCommand(gpu: number | undefined): string[] {
  return gpu === undefined ? ['nvidia-smi', '--gpu-reset'] : ['nvidia-smi', '--gpu-reset', '-i', String(gpu)];
}

export interface GpuResetDeps {
  kc: KubeConfig;
  core: CoreV1Api;
  selectors: readonly ResetPodSelector[];
  timeoutMs: number;
}

export async function runGpuReset(
  deps: GpuResetDeps,
  node: string,
  gpu: number | undefined,
  signal?: AbortSignal,
): Promise<GpuResetRun> {
  const page = await deps.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` });
  let target: { namespace: string; name: string; container?: string } | undefined;
  for (const s of deps.selectors) {
    const p = page.items.find(
      (x) =>
        (s.namespace === undefined || s.namespace === x.metadata?.namespace) &&
        matchesLabelSelector(x.metadata?.labels, s.selector) &&
        isPodReady(x),
    );
    if (p?.metadata?.name && p.metadata.namespace) {
      target = {
        namespace: p.metadata.namespace,
        name: p.metadata.name,
        ...(s.container ? { container: s.container } : {}),
      };
      break;
    }
  }
  if (!target) {
    const which = deps.selectors.map((s) => (s.namespace ? `${s.namespace}/${s.selector}` : s.selector));
    return { kind: 'unavailable', reason: `no Ready reset pod (${which.join(', ')}) on ${node}` };
  }
  // Loaded on first use, as the dcgm-server source does: the WebSocket code is not needed otherwise.
  const { execInPod, ExecError } = await import('./exec.js');
  const where = `${target.namespace}/${target.name}`;
  try {
    const out = await execInPod(deps.kc, {
      namespace: target.namespace,
      pod: target.name,
      ...(target.container ? { container: target.container } : {}),
      command: gpuResetCommand(gpu),
      timeoutMs: deps.timeoutMs,
      ...(signal ? { signal } : {}),
    });
    const output = `${out.stdout}${out.stderr}`.trim();
    return { kind: 'ran', pod: where, exitCode: out.exitCode, output };
  } catch (err) {
    if (err instanceof ExecError && err.code === 'missing-command')
      return { kind: 'unavailable', reason: `${where} has no nvidia-smi in its image` };
    throw err;
  }
}

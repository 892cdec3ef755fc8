import type { KubeTrainingJob } from './k8s-objects.js';
import type { ResourceStore } from './resource-store.js';
import { jobCondition } from './workloads.js';

/**
 * The Kubeflow training operator's status for a PyTorchJob: `Running` once every replica is scheduled,
 * `Restarting` (with the operator's message) when a replica's pod is gone. Written only on a change, so a
 * watch sees one MODIFIED per transition.
 */
export function setJobRunning(
  cluster: { readonly store: ResourceStore; timestamp(): string },
  namespace: string,
  name: string,
  running: boolean,
  message?: string,
): void {
  const { store } = cluster;
  const current = store.get<KubeTrainingJob>('pytorchjobs', namespace, name);
  if (!current) return;
  const isRunning = current.status.conditions.some((c) => c.type === 'Running' && c.status === 'True');
  if (isRunning === running) return;
  const now = cluster.timestamp();
  store.update<KubeTrainingJob>('pytorchjobs', namespace, name, (j) => {
    const others = j.status.conditions.filter((c) => c.type !== 'Running' && c.type !== 'Restarting');
    j.status.conditions = running
      ? [
          ...others,
          jobCondition(
            'Restarting',
            'False',
            'PyTorchJobRestarting',
            `PyTorchJob ${name} is restarting.`,
            now,
          ),
          jobCondition('Running', 'True', 'PyTorchJobRunning', `PyTorchJob ${name} is running.`, now),
        ]
      : [
          ...others,
          jobCondition('Running', 'False', 'PyTorchJobRunning', `PyTorchJob ${name} is not running.`, now),
          jobCondition(
            'Restarting',
            'True',
            'PyTorchJobRestarting',
            message ?? `PyTorchJob ${name} is restarting.`,
            now,
          ),
        ];
    return j;
  });
}

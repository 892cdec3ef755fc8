/**
 * Issue 11, item 8 ("a stricter simulator"), the product side: a real runtime remediates an ECC fault while
 * the simulated API server misbehaves as a real control plane does — evictions throttled with 429 +
 * Retry-After, a 500 on the first node patch, a 409 on a Lease renew (leadership lost mid-remediation, then won
 * back), every watch cut and the next one answered 410 Gone. The remediation still resolves, and each
 * external effect happens once.
 */
import { describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../../src/app/runtime.js';
import { loadConfig } from '../../src/config/config.js';
import { silentLogger } from '../../src/log/logger.js';
import { startSimulator } from '../../src/sim/index.js';
import type { K8sRecordedRequest } from '../../src/sim/k8s-server.js';
import { stepStore } from '../../src/store/remediation-stores.js';
import { suiteSandbox } from '../support/sim-runtime.js';
import { waitFor } from '../support/wait.js';

const sandbox = suiteSandbox('gpu-medic-api-faults-');

describe('a remediation through a misbehaving API server', () => {
  it('429 + Retry-After, 500, 409 on the Lease, dropped and expired watches: resolved, each effect once', async () => {
    const sim = await startSimulator({
      nodes: 6,
      rebootDelayMs: 1000,
      rescheduleDelayMs: 300,
      // The DBE is read from the ECC counter (gpu-medic's counters file); boot delays scaled down.
      counters: 'full',
      devicePluginDelayMs: 300,
      exporterReadyDelayMs: 200,
      slack: false,
      controlPort: false,
    });
    let rt: Runtime | undefined;
    try {
      Object.assign(process.env, sim.env);
      process.env.POD_NAME = 'medic-faults';
      const config = loadConfig({
        ...sim.env,
        DB_PATH: sandbox.path('faults.db'),
        MONITOR_INTERVAL: '1',
        CLASSIFIER: 'rules',
        LOG_LEVEL: 'silent',
        POD_NAMESPACE: 'gpu-medic',
        REMEDIATIONS_PER_HOUR: '50',
        MAX_UNHEALTHY_PERCENT: '60',
        LEASE_DURATION: '3',
        LEASE_RENEW: '0.5',
        REBOOT_GRACE: '1',
        REMEDIATION_POLL: '0.25',
      });
      rt = await createRuntime(config, {
        logger: silentLogger(),
        leaderElection: true,
        engine: { pollMs: 200, maxBackoffMs: 300 },
      });
      const live = rt;
      const gpuNodes = sim.cluster
        .listNodes()
        .filter((n) => n.status?.capacity?.['nvidia.com/gpu'])
        .map((n) => n.metadata.name);
      // A node without training-job pods, so the run ends without following a job.
      const target =
        gpuNodes.find((n) =>
          sim.cluster
            .listPods({ nodeName: n })
            .every((p) => !p.metadata.labels?.['training.kubeflow.org/job-name']),
        ) ?? '';
      const evictable = sim.cluster
        .listPods({ nodeName: target })
        .filter((p) => !p.metadata.ownerReferences?.some((o) => o.kind === 'DaemonSet'))
        .filter((p) => !p.metadata.annotations?.['kubernetes.io/config.mirror']);
      expect(target).not.toBe('');
      expect(evictable.length).toBeGreaterThan(0);
      await live.start();
      await waitFor(
        'the leader to scan every node',
        () => (live.leader?.isLeader() && gpuNodes.every((n) => live.lastScan.has(n)) ? true : undefined),
        { context: () => [...live.lastScan.keys()], timeoutMs: 45_000 },
      );

      const changes: boolean[] = [];
      live.leader?.onChange((v) => changes.push(v));
      sim.k8s.faults.add({ operation: 'patchNode', pathPrefix: `/api/v1/nodes/${target}`, status: 500 });
      sim.k8s.faults.add({ operation: 'evictPod', status: 429, retryAfterSeconds: 1, times: 2 });
      sim.k8s.faults.add({ operation: 'replaceLease', status: 409 });
      sim.k8s.faults.add({ operation: 'watchNodes', status: 410 });
      expect(sim.k8s.dropWatches()).toBeGreaterThan(0);
      sim.cluster.injectEcc(target, 0, { dbe: 1 });

      const incident = await waitFor(
        'the remediation to end',
        () => live.store.incidents.listByNode(target, 10).find((i) => i.closedAt !== undefined),
        {
          context: () => [
            live.store.incidents.listByNode(target, 10).map((i) => i.state),
            stepStore(live.store)
              .list(live.store.incidents.listByNode(target, 10)[0]?.id ?? '')
              .map((r) => `${r.step}:${r.status}`),
            sim.k8s.faults.served,
          ],
          timeoutMs: 45_000,
        },
      );
      expect(incident.state, incident.stateReason).toBe('resolved');
      // Every fault was served, and the 409 cost the leadership once (then it was won back).
      expect(sim.k8s.faults.pending).toBe(0);
      expect(changes.slice(0, 2)).toEqual([false, true]);
      const k8s = sim.log.requests.filter((r): r is K8sRecordedRequest => r.service === 'k8s');
      // The first node patch (the karpenter.sh/do-not-disrupt annotation, before the cordon): one 500, then
      // accepted; then the cordon, the uncordon and the annotation's removal, each once.
      // The annotation comes off just after the end: wait for that patch before counting.
      await waitFor(
        'the do-not-disrupt annotation to be released',
        () =>
          sim.log.requests.some(
            (r) =>
              r.service === 'k8s' &&
              (r as K8sRecordedRequest).operation === 'patchNode' &&
              r.body.includes('do-not-disrupt') &&
              r.body.includes('null'),
          )
            ? true
            : undefined,
        { context: () => [], timeoutMs: 45_000 },
      );
      const patches = sim.log.requests
        .filter((r): r is K8sRecordedRequest => r.service === 'k8s')
        .filter((r) => r.operation === 'patchNode' && r.name === target);
      const kinds = patches.map(
        (r) => `${r.status} ${r.body.includes('"unschedulable"') ? 'schedulable' : 'annotation'}`,
      );
      expect(kinds).toEqual([
        '500 annotation',
        '200 annotation',
        '200 schedulable',
        '200 schedulable',
        '200 annotation',
      ]);
      const accepted = k8s.filter((r) => r.operation === 'evictPod' && r.status === 201).map((r) => r.name);
      expect(new Set(accepted).size).toBe(accepted.length);
      expect(accepted.sort()).toEqual(evictable.map((p) => p.metadata.name).sort());
      expect(sim.log.find('RebootInstances')).toHaveLength(1);
      const done = stepStore(live.store)
        .list(incident.id)
        .filter((r) => r.status === 'done')
        .map((r) => r.step);
      expect(new Set(done).size, done.join(' ')).toBe(done.length);
      sim.assertNoUnexpected();
    } finally {
      await rt?.stop();
      await sim.close();
    }
  }, 90_000);
});

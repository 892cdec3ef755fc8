/**
 * PostgreSQL going away under a running gpu-medic: /readyz turns not ready, and no remediation step starts
 * while its journal row cannot be written — a request made during the outage calls neither Kubernetes nor
 * AWS. Once the database is back the same request goes through and the repair runs to its end.
 * The outage is a TCP proxy cut between the runtime and the run's PostgreSQL server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isOpen } from '../../src/domain/incident.js';
import { freshDatabase, POSTGRES_HOOK_TIMEOUT, type TestDatabase, urlFor } from '../support/postgres.js';
import { type SimRuntimeOptions, suiteSandbox, withSimRuntime } from '../support/sim-runtime.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait.js';

const sandbox = suiteSandbox('gpu-medic-pg-outage-');
let db: TestDatabase;
let proxy: TcpProxy;
beforeAll(async () => {
  db = await freshDatabase('outage');
  proxy = await startTcpProxy('127.0.0.1', db.info.port);
}, POSTGRES_HOOK_TIMEOUT);
afterAll(() => proxy?.close());

/** A runtime on the test database through the proxy the tests cut, as cluster `cluster`. */
function outageRuntime(cluster: string): SimRuntimeOptions {
  return {
    sim: {
      nodes: 4,
      karpenterNodes: 0,
      rebootDelayMs: 1500,
      devicePluginDelayMs: 300,
      exporterReadyDelayMs: 200,
      slack: false,
      controlPort: false,
    },
    dbPath: sandbox.dbPath(),
    env: {
      DATABASE_URL: urlFor({ ...db.info, port: proxy.port }, db.name),
      CLUSTER_NAME: cluster,
      MAX_UNHEALTHY_PERCENT: '60',
    },
    scanFirst: true,
  };
}

describe('PostgreSQL unavailable while running', () => {
  it('no step starts without its journal row; the request goes through once the database is back', async () => {
    await withSimRuntime(outageRuntime('outage'), async ({ sim, rt, gpuNodes }) => {
      const [node = ''] = gpuNodes;
      expect(rt.store.dialect).toBe('postgres');
      expect(rt.isReady()).toBe(true);

      await proxy.cut();
      await waitFor('the store to notice the outage', () => !rt.store.available());
      expect(rt.isReady()).toBe(false);
      const before = sim.mutatingRequests().length;
      const instanceId = sim.cluster.nodeInfo(node)?.instanceId ?? '';
      const callsFor = () =>
        sim.log.requests.filter(
          (r) => r.service !== 'k8s' && (r.body.includes(instanceId) || r.path.includes(instanceId)),
        ).length;
      const awsBefore = callsFor();
      const during = await rt.services.requestManual('reboot', node, 'cli:alice', 'during the outage').then(
        (r) => r,
        (err: unknown) => err,
      );
      expect(during).toMatchObject({ code: expect.stringMatching(/STORE_UNAVAILABLE|error/) });
      expect(sim.mutatingRequests().slice(before)).toEqual([]);
      expect(callsFor()).toBe(awsBefore);

      await proxy.restore();
      await waitFor('the store to reconnect', () => rt.store.available() || undefined, {
        timeoutMs: 20_000,
      });
      await waitFor('/readyz to be ready again', () => rt.isReady() || undefined);
      const after = await rt.services.requestManual('reboot', node, 'cli:alice', 'database back');
      expect(after).toMatchObject({ ok: true });
      const done = await waitFor(
        'the reboot to finish',
        () => rt.store.incidents.listByNode(node, 10).find((i) => !isOpen(i.state)),
        { timeoutMs: 40_000 },
      );
      expect(done.state, done.stateReason).toBe('resolved');
      expect(sim.mutatingRequests().slice(before).length).toBeGreaterThan(0);
    });
  }, 90_000);
  it('a repair interrupted by the outage resumes from its journal once the database is back, rebooting once', async () => {
    await withSimRuntime(outageRuntime('outage-resume'), async ({ sim, rt, gpuNodes }) => {
      const [, node = ''] = gpuNodes;
      const started = await rt.services.requestManual('reboot', node, 'cli:alice', 'before the outage');
      expect(started).toMatchObject({ ok: true });
      const incident = await waitFor('the incident', () => rt.store.incidents.listByNode(node, 10)[0]);
      await waitFor('the reboot to be under way', () =>
        sim.log.find('RebootInstances').length > 0 ? true : undefined,
      );
      await proxy.cut();
      // The run's next journal write fails: it stops where its rows say, nothing further is done.
      await waitFor(
        'the run to stop on the outage',
        () => !rt.engine.active().includes(incident.id) || undefined,
        {
          timeoutMs: 30_000,
        },
      );
      await proxy.restore();
      await waitFor('the store to reconnect', () => rt.store.available() || undefined, {
        timeoutMs: 20_000,
      });
      const done = await waitFor(
        'the resumed repair to finish',
        () => rt.store.incidents.listByNode(node, 10).find((i) => i.id === incident.id && !isOpen(i.state)),
        {
          timeoutMs: 40_000,
          context: () => ({
            incident: rt.store.incidents.get(incident.id),
            steps: rt.store.steps.list(incident.id),
            active: rt.engine.active(),
            outages: rt.store.outages(),
          }),
        },
      );
      expect(done.state, done.stateReason).toBe('resolved');
      expect(sim.log.find('RebootInstances')).toHaveLength(1);
    });
  }, 120_000);
});

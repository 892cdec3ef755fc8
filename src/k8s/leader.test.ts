import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../test/support/wait.js';
import { SimCluster } from '../sim/cluster.js';
import type { KubeLease } from '../sim/k8s-objects.js';
import { type SimK8sServer, startSimK8s } from '../sim/k8s-server.js';
import { kubeconfigFor } from '../sim/kubeconfig.js';
import { type RecordedRequest, RequestLog } from '../sim/recorder.js';
import { LeaderElector, leaseTimeMs, microTime } from './leader.js';

const NS = 'gpu-medic';
const LEASE = 'gpu-medic-leader';

/** Runs a hook after each recorded request, so a test can change the lease between a client's read and write. */
class HookedLog extends RequestLog {
  afterRecord: ((r: RecordedRequest) => void) | undefined;
  override record(r: RecordedRequest): void {
    super.record(r);
    this.afterRecord?.(r);
  }
}

let cluster: SimCluster;
let sim: SimK8sServer;
let log: HookedLog;
let electors: LeaderElector[];

function elector(identity: string): LeaderElector {
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfigFor(sim.url));
  const e = new LeaderElector({
    kc,
    namespace: NS,
    leaseName: LEASE,
    identity,
    // Short, with room for a slow CI machine: a late renew must not flip leadership.
    leaseDurationMs: 1_000,
    renewEveryMs: 100,
    retryEveryMs: 50,
  });
  electors.push(e);
  return e;
}

beforeEach(async () => {
  cluster = new SimCluster({ nodes: 1, workloads: false });
  log = new HookedLog();
  sim = await startSimK8s(cluster, { log });
  electors = [];
});

afterEach(async () => {
  for (const e of electors) await e.stop();
  await sim.close();
  cluster.close();
  log.assertNoUnexpected();
});

const lease = () => cluster.getLease(NS, LEASE);

describe('LeaderElector on a simulated Lease', () => {
  it('of two candidates exactly one leads; stopping it hands the lease to the other', async () => {
    const a = elector('pod-a');
    const b = elector('pod-b');
    const changes: string[] = [];
    a.onChange((v) => changes.push(`a:${v}`));
    b.onChange((v) => changes.push(`b:${v}`));
    await Promise.all([a.start(), b.start()]);
    await waitFor('a leader', () => a.isLeader() || b.isLeader());

    expect([a, b].filter((e) => e.isLeader())).toHaveLength(1);
    // Over several renew periods (five renewals the API server accepted), leadership neither moves nor
    // doubles: every change of either elector's isLeader() is told to its listeners, so none may come.
    const elected = changes.length;
    const renewals = () => log.find('replaceLease').filter((r) => r.status === 200).length;
    const target = renewals() + 5;
    await waitFor('five renewals', () => renewals() >= target);
    expect(changes.slice(elected)).toEqual([]);
    expect([a, b].filter((e) => e.isLeader())).toHaveLength(1);
    const [leader, follower] = a.isLeader() ? [a, b] : [b, a];
    expect(lease()?.spec.holderIdentity).toBe(leader.identity);
    expect(lease()?.spec.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(lease()?.spec.leaseTransitions).toBe(0);
    expect(
      log
        .find('createLease')
        .map((r) => r.status)
        .sort(),
    ).toEqual([201, 409]);

    await leader.stop();
    expect(leader.isLeader()).toBe(false);
    await waitFor('the follower takes over', () => follower.isLeader());
    expect(lease()?.spec.holderIdentity).toBe(follower.identity);
    expect(lease()?.spec.leaseTransitions).toBe(1);
    const l = leader === a ? 'a' : 'b';
    const f = follower === a ? 'a' : 'b';
    expect(changes[0]).toBe(`${l}:true`);
    expect(changes.at(-1)).toBe(`${f}:true`);
    expect(changes.lastIndexOf(`${l}:false`)).toBeLessThan(changes.indexOf(`${f}:true`));
  });

  it('a renew that meets a newer resourceVersion (409) is a lost race: leadership ends at once', async () => {
    // Rounds driven by hand (no start()), so nothing but the 409 can end the leadership.
    const a = elector('pod-a');
    const changes: boolean[] = [];
    a.onChange((v) => changes.push(v));
    expect(await a.tryAcquireOrRenew()).toBe(true);
    expect(a.isLeader()).toBe(true);

    // A rival writes the lease right after our next read: our replace then carries a stale resourceVersion.
    log.afterRecord = (r) => {
      if (r.operation !== 'getLease') return;
      log.afterRecord = undefined;
      const current = lease();
      if (!current) throw new Error('no lease');
      cluster.replaceLease(NS, LEASE, {
        ...current,
        metadata: { ...current.metadata },
        spec: {
          ...current.spec,
          holderIdentity: 'pod-rival',
          leaseDurationSeconds: 60,
          renewTime: new Date().toISOString(),
        },
      } satisfies KubeLease);
    };
    expect(await a.tryAcquireOrRenew()).toBe(false);
    expect(a.isLeader()).toBe(false);
    expect(changes).toEqual([true, false]);
    expect(log.find('replaceLease').map((r) => r.status)).toEqual([409]);
    expect(lease()?.spec.holderIdentity).toBe('pod-rival');

    // The rival's lease is fresh: the next round leaves it alone.
    expect(await a.tryAcquireOrRenew()).toBe(false);
    expect(log.find('replaceLease')).toHaveLength(1);
    expect(lease()?.spec.holderIdentity).toBe('pod-rival');
  });

  it('takes over a lease whose holder stopped renewing, counting the transition', async () => {
    cluster.createLease(NS, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: LEASE, namespace: NS, uid: '', resourceVersion: '', creationTimestamp: '' },
      spec: {
        holderIdentity: 'pod-crashed',
        leaseDurationSeconds: 1,
        renewTime: new Date(Date.now() - 60_000).toISOString(),
        leaseTransitions: 4,
      },
    });
    const a = elector('pod-a');
    await a.start();
    // First sight of a record starts our own clock on it (skew guard), so the takeover comes a lease later.
    await waitFor('takeover', () => a.isLeader());
    expect(lease()?.spec).toMatchObject({ holderIdentity: 'pod-a', leaseTransitions: 5 });
  });

  it('never reports leadership on a lease older than its duration, even before a renew fails', async () => {
    let now = Date.now();
    const kc = new KubeConfig();
    kc.loadFromString(kubeconfigFor(sim.url));
    const a = new LeaderElector({
      kc,
      namespace: NS,
      leaseName: LEASE,
      identity: 'pod-a',
      leaseDurationMs: 1_000,
      renewEveryMs: 100,
      clock: { now: () => now },
    });
    expect(await a.tryAcquireOrRenew()).toBe(true);
    now += 999;
    expect(a.isLeader()).toBe(true);
    now += 1;
    expect(a.isLeader()).toBe(false);
    expect(await a.tryAcquireOrRenew()).toBe(true);
    expect(a.isLeader()).toBe(true);
  });

  it('stops leading once its lease runs out when the API server stops answering', async () => {
    const a = elector('pod-a');
    const changes: boolean[] = [];
    a.onChange((v) => changes.push(v));
    await a.start();
    expect(a.isLeader()).toBe(true);
    await sim.close();
    await waitFor('leadership lost', () => !a.isLeader());
    await waitFor('listeners told', () => changes.at(-1) === false);
  });

  it('a renew answered 500 or 429 keeps the leadership (the lease has not run out); the next renew holds it', async () => {
    const a = elector('pod-a');
    const changes: boolean[] = [];
    a.onChange((v) => changes.push(v));
    expect(await a.tryAcquireOrRenew()).toBe(true);
    sim.faults.add({ operation: 'replaceLease', status: 500 });
    expect(await a.tryAcquireOrRenew()).toBe(true);
    expect(a.isLeader()).toBe(true);
    sim.faults.add({ operation: 'getLease', status: 429, retryAfterSeconds: 1 });
    expect(await a.tryAcquireOrRenew()).toBe(true);
    expect(await a.tryAcquireOrRenew()).toBe(true);
    expect(log.find('replaceLease').map((r) => r.status)).toEqual([500, 200]);
    expect(changes).toEqual([true]);
  });

  it('an injected 409 on a renew is a lost race and a 401 (a revoked token) ends the leadership at once', async () => {
    const a = elector('pod-a');
    const changes: boolean[] = [];
    a.onChange((v) => changes.push(v));
    expect(await a.tryAcquireOrRenew()).toBe(true);
    sim.faults.add({ operation: 'replaceLease', status: 409 });
    expect(await a.tryAcquireOrRenew()).toBe(false);
    expect(changes).toEqual([true, false]);
    expect(await a.tryAcquireOrRenew()).toBe(true);
    sim.faults.add({ operation: 'getLease', status: 401 });
    expect(await a.tryAcquireOrRenew()).toBe(false);
    expect(a.isLeader()).toBe(false);
    expect(changes).toEqual([true, false, true, false]);
  });
});

describe('lease times', () => {
  it('writes MicroTime with six fractional digits and reads strings or Dates', () => {
    const ms = Date.parse('2025-03-04T05:06:07.123Z');
    expect(String(microTime(ms))).toBe('2025-03-04T05:06:07.123000Z');
    expect(leaseTimeMs('2025-03-04T05:06:07.123000Z')).toBe(ms);
    expect(leaseTimeMs(new Date(ms))).toBe(ms);
    expect(leaseTimeMs('yesterday')).toBeUndefined();
    expect(leaseTimeMs(undefined)).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import { eccIncident, p5Cluster } from '../../test/support/engine-harness.js';
import { SimulatedCrash } from '../../test/support/power.js';

describe('RemediationEngine: crash at every step and resume', () => {
  async function crashAndResume(action: 'reboot' | 'replace', write: number, phase: 'before' | 'after') {
    const h = p5Cluster();
    const incident = action === 'reboot' ? h.openIncident('gpu-0', eccIncident) : h.openIncident('gpu-0');
    h.claim(incident.id, action, 'cordoned');
    h.power.arm(write, phase);
    let crashed = false;
    try {
      await h.engine.run(incident.id);
    } catch (error) {
      expect(error).toBeInstanceOf(SimulatedCrash);
      crashed = true;
    }
    h.power.restore();
    const restarted = h.newEngine();
    restarted.start();
    await restarted.whenIdle();
    return { h, incident, crashed };
  }

  it.each([
    'reboot',
    'replace',
  ] as const)('%s: each external action happens exactly once, whatever the crash point', async (action) => {
    let points = 0;
    for (let write = 1; ; write++) {
      let anyCrash = false;
      for (const phase of ['before', 'after'] as const) {
        const { h, incident, crashed } = await crashAndResume(action, write, phase);
        anyCrash ||= crashed;
        const where = `${action}, crash ${phase} write ${write}`;
        expect(h.stateOf(incident.id), where).toBe('resolved');
        expect(h.world.count('cordon'), where).toBe(1);
        for (const pod of h.world.pods.values()) expect(pod.evictions, where).toBeLessThanOrEqual(1);
        if (action === 'reboot') {
          expect(h.world.count('rebootInstance'), where).toBe(1);
          expect(h.world.count('uncordon'), where).toBe(1);
          expect(h.world.nodes.get('gpu-0')?.unschedulable, where).toBe(false);
          // The do-not-disrupt annotation is off again, whatever the crash point.
          expect(h.world.doNotDisrupt.has('gpu-0'), where).toBe(false);
        } else {
          expect(h.world.count('terminateInAutoScalingGroup'), where).toBe(1);
          expect(h.world.count('uncordon'), where).toBe(0);
        }
        expect(h.world.count('deletePod') + h.world.count('terminateInstance'), where).toBe(0);
      }
      if (!anyCrash) break;
      points++;
    }
    // Every write of a full run was a crash point (plan, steps, transitions, audit): dozens of them.
    expect(points).toBeGreaterThan(20);
  });
});

describe('RemediationEngine: aborted runs (leadership lost, process stopping)', () => {
  it('an abort mid-drain stops the evictions at once; the next engine resumes from the journal and does no step twice', async () => {
    // The training pod stays behind its PDB until the test lets it go.
    const h = p5Cluster({}, 1_000_000);
    const incident = h.openIncident('gpu-0');
    let evictionsAtAbort: number | undefined;
    let aborting: Promise<void> | undefined;
    const unsubscribe = h.bus.subscribe((e) => {
      if (e.step === 'pdb_wait' && aborting === undefined) {
        evictionsAtAbort = h.world.count('evictPod');
        aborting = h.engine.abort('lost the lease');
      }
    });
    const run = h.services.triage(incident.id);
    await run;
    await h.engine.whenIdle();
    await aborting;
    unsubscribe();

    expect(evictionsAtAbort).toBeGreaterThan(0);
    // Not one eviction after the abort, and the run left the drain for the next leader.
    expect(h.world.count('evictPod')).toBe(evictionsAtAbort);
    expect(h.engine.active()).toEqual([]);
    expect(h.stateOf(incident.id)).toBe('draining');
    expect(h.steps.lastOf(incident.id, 'drain')?.status).toBe('started');
    expect(h.events.map((e) => e.step)).not.toContain('failed');

    // The next leader (a fresh engine on the same journal) finishes it once the PDB allows.
    const pod = h.world.pods.get('ml/llama-ft-worker-0');
    if (!pod) throw new Error('the training pod is gone');
    pod.pdbBlocks = 0;
    const next = h.newEngine();
    expect(next.start()).toEqual([incident.id]);
    await next.whenIdle();
    expect(h.stateOf(incident.id)).toBe('resolved');
    expect(h.world.count('cordon')).toBe(1);
    expect(h.world.count('terminateInAutoScalingGroup')).toBe(1);
    const rows = h.steps.list(incident.id).filter((r) => r.status === 'done');
    const names = rows.map((r) => r.step);
    expect(new Set(names).size, names.join(' ')).toBe(names.length);
    // web-1 was evicted before the abort and never again; the training pod once, by the next leader.
    expect(h.events.filter((e) => e.step === 'pod_evicted').map((e) => e.details.pod)).toEqual([
      'default/web-1',
      'ml/llama-ft-worker-0',
    ]);
  });

  it('leadership lost and regained at once: the aborted run winds down, then the same engine resumes it', async () => {
    const h = p5Cluster({}, 3);
    const incident = h.openIncident('gpu-0');
    let aborted = false;
    let resumed: Promise<unknown> | undefined;
    h.bus.subscribe((e) => {
      if (e.step === 'pdb_wait' && !aborted) {
        aborted = true;
        void h.engine.abort('lost the lease');
        // Regained before the aborted run returned: start() must not drop the incident as "already running".
        expect(h.engine.start()).toEqual([incident.id]);
        resumed = h.engine.whenIdle();
      }
    });
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    await resumed;
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('resolved');
    expect(h.world.count('cordon')).toBe(1);
    expect(h.world.count('terminateInAutoScalingGroup')).toBe(1);
    const done = h.steps
      .list(incident.id)
      .filter((r) => r.status === 'done')
      .map((r) => r.step);
    expect(new Set(done).size, done.join(' ')).toBe(done.length);
  });

  it('an abort ends a wait at once: the engine does not sleep out its backoff', async () => {
    const h = p5Cluster({}, 1_000_000);
    const incident = h.openIncident('gpu-0');
    h.bus.subscribe((e) => {
      if (e.step === 'pdb_wait') void h.engine.abort('the process is stopping');
    });
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    // Without the abort the drain would retry until DRAIN_TIMEOUT (15 min of fake time, hundreds of sleeps).
    expect(h.clock.sleeps).toBeLessThanOrEqual(1);
    expect(h.steps.lastOf(incident.id, 'drain')?.status).toBe('started');
  });
});

describe('RemediationEngine: step errors', () => {
  it.each([
    [false, 1, 'failed', /^gpu-medic's IAM role may not ec2:RebootInstances$/],
    [true, 3, 'failed', /^reboot failed after 3 attempts: /],
  ] as const)('an error with retryable=%s is tried %i time(s)', async (retryable, calls, state, reason) => {
    const h = p5Cluster();
    let tries = 0;
    h.world.cloud.rebootInstance = async () => {
      tries++;
      throw Object.assign(new Error("gpu-medic's IAM role may not ec2:RebootInstances"), { retryable });
    };
    const incident = h.openIncident('gpu-0', eccIncident);
    h.claim(incident.id, 'reboot', 'cordoned');
    await h.engine.run(incident.id);
    expect(tries).toBe(calls);
    expect(h.stateOf(incident.id)).toBe(state);
    const failed = h.events.filter((e) => e.step === 'failed');
    expect(failed).toHaveLength(1);
    expect(String(failed[0]?.details.reason)).toMatch(reason);
  });
});

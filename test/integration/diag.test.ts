/**
 * Issue 14, DCGM diagnostics against the simulated cluster (real Kubernetes client, pod exec over WebSocket into
 * the shell-less EKS node monitoring agent's DCGM pods): a reboot whose post-repair diagnostic passes is
 * uncordoned; one whose diagnostic fails is escalated to replace and stays cordoned until it is replaced.
 */
import { describe, expect, it } from 'vitest';
import { createChatPort } from '../../src/app/chat.js';
import type { Runtime } from '../../src/app/runtime.js';
import type { Incident } from '../../src/domain/incident.js';
import { isOpen } from '../../src/domain/incident.js';
import type { ExecRecordedRequest } from '../../src/sim/exec-server.js';
import { createAuthorizer } from '../../src/slack/authz.js';
import { handleGpuCommand } from '../../src/slack/listeners/commands/handle-gpu-command.js';
import { type SimRuntime, startAndScan, suiteSandbox, withSimRuntime } from '../support/sim-runtime.js';
import { waitFor } from '../support/wait.js';

const sandbox = suiteSandbox('gpu-medic-diag-');

function withHarness(
  env: Record<string, string>,
  fn: (h: SimRuntime) => Promise<void>,
  authorize?: (actor: string) => boolean,
): Promise<void> {
  return withSimRuntime(
    {
      sim: {
        counters: 'full',
        nodes: 4,
        dcgmServer: true,
        rebootDelayMs: 1500,
        replaceDelayMs: 2000,
        terminateDelayMs: 300,
        rescheduleDelayMs: 300,
        devicePluginDelayMs: 600,
        exporterReadyDelayMs: 400,
        diagDurationMs: { 1: 300, 2: 600, 3: 1200 },
        slack: false,
        controlPort: false,
      },
      env,
      dbPath: sandbox.dbPath(),
      ...(authorize ? { authorize } : {}),
    },
    fn,
  );
}

const incidentsOn = (rt: Runtime, node: string): Incident[] => rt.store.incidents.listByNode(node, 100);

/** The `dcgmi diag` execs (only the repaired node runs one in these tests; `sim.cluster.diag.runs` names it). */
function diagExecs(h: SimRuntime): ExecRecordedRequest[] {
  return h.sim.log.requests.filter(
    (r): r is ExecRecordedRequest =>
      r.service === 'k8s' &&
      (r as ExecRecordedRequest).subresource === 'exec' &&
      (r as ExecRecordedRequest).command?.[1] === 'diag',
  );
}

/** Whether a PATCH set the node schedulable again. */
function uncordons(h: SimRuntime, node: string) {
  return h.sim.log.requests.filter(
    (r) =>
      r.service === 'k8s' &&
      r.method === 'PATCH' &&
      r.path.endsWith(`/nodes/${node}`) &&
      /"unschedulable":\s*(false|null)/.test(r.body),
  );
}

const context = (rt: Runtime, node: string) => () =>
  incidentsOn(rt, node).map((i) => [i.plannedAction, i.state, i.stateReason]);

describe('DCGM diagnostics after a repair', () => {
  it('a reboot whose level-2 diagnostic passes is uncordoned after it (argv exec in the DCGM pod)', async () => {
    await withHarness({ POST_REPAIR_DIAG: '2' }, async (h) => {
      const { sim, rt, gpuNodes, events } = h;
      const target = gpuNodes[1] ?? '';
      await startAndScan(rt, gpuNodes);
      sim.cluster.injectEcc(target, 5, { dbe: 2 });

      const incident = await waitFor(
        'the ECC incident to close',
        () => incidentsOn(rt, target).find((i) => i.plannedAction === 'reboot' && !isOpen(i.state)),
        { context: context(rt, target) },
      );
      expect(incident.state, incident.stateReason).toBe('resolved');
      expect(sim.cluster.diag.runs.map((r) => [r.node, r.level])).toEqual([[target, 2]]);
      const execs = diagExecs(h);
      expect(execs.map((r) => [r.command, r.exitCode])).toEqual([[['dcgmi', 'diag', '-r', '2', '-j'], 0]]);
      const mine = events.filter((e) => e.incidentId === incident.id).map((e) => e.step);
      expect(mine.indexOf('gpu_scan')).toBeLessThan(mine.indexOf('diag_started'));
      expect(mine.indexOf('diag_result')).toBeLessThan(mine.indexOf('uncordoned'));
      const result = events.find((e) => e.incidentId === incident.id && e.step === 'diag_result');
      expect(result?.details).toMatchObject({ level: 2, verdict: 'pass' });
      expect(sim.cluster.getNode(target)?.spec?.unschedulable ?? false).toBe(false);
      // The uncordon, as the second test looks for it (and must not find it).
      expect(uncordons(h, target)).toHaveLength(1);
      const row = rt.store.steps.lastOf(incident.id, 'diagnose');
      expect(row?.detail).toMatchObject({ level: 2, verdict: 'pass' });
      const results = (row?.detail as { results?: { status: string }[] } | undefined)?.results ?? [];
      expect(results.filter((r) => r.status === 'pass')).toHaveLength(3 * 8);
    });
  }, 45_000);

  it('a diagnostic that fails after a reboot escalates to replace; the node stays cordoned until it is replaced', async () => {
    await withHarness({}, async (h) => {
      const { sim, rt, gpuNodes, events } = h;
      const target = gpuNodes.find((n) => sim.cluster.nodeInfo(n)?.autoScalingGroup) ?? '';
      expect(target).not.toBe('');
      await startAndScan(rt, gpuNodes);
      // The DBE clears with the reboot (the scan is clean again); DCGM's diagnostic still finds the GPU bad.
      sim.cluster.injectDiag(target, { test: 'software', gpu: 5, status: 'fail' });
      sim.cluster.injectEcc(target, 5, { dbe: 2 });

      const replaced = await waitFor(
        'the follow-up replace to resolve',
        () => incidentsOn(rt, target).find((i) => i.plannedAction === 'replace' && i.state === 'resolved'),
        { context: context(rt, target) },
      );
      const all = incidentsOn(rt, target).sort((a, b) => a.firstSeen - b.firstSeen);
      expect(all.map((i) => [i.plannedAction, i.state])).toEqual([
        ['reboot', 'escalated'],
        ['replace', 'resolved'],
      ]);
      const first = all[0] as Incident;
      expect(first.stateReason).toMatch(
        /DCGM diagnostics level 1 failed after the reboot \(software on GPU 5\)/,
      );
      expect(replaced.faultKey).toBe(first.faultKey);
      const result = events.find((e) => e.incidentId === first.id && e.step === 'diag_result');
      expect(result?.details).toMatchObject({ level: 1, verdict: 'fail' });
      expect(result?.step === 'diag_result' && result.details.results).toContainEqual({
        test: 'software',
        gpu: 5,
        status: 'fail',
        info: 'Pending page retirements together with a DBE were detected on GPU 5.',
      });
      expect(diagExecs(h).map((r) => r.exitCode)).toEqual([226]);
      expect(sim.cluster.diag.runs.map((r) => [r.node, r.level])).toEqual([[target, 1]]);
      // Cordoned from the first incident until the instance was terminated: never uncordoned in between.
      expect(uncordons(h, target)).toEqual([]);
      expect(sim.log.find('RebootInstances')).toHaveLength(1);
      expect(sim.log.find('TerminateInstanceInAutoScalingGroup')).toHaveLength(1);
      // RMA evidence: the instance is tagged with the incident and the fault before it is terminated.
      const ec2 = sim.log.requests.filter((r) => r.service === 'ec2' || r.service === 'autoscaling');
      const operations = ec2.map((r) => r.operation);
      expect(operations.indexOf('CreateTags'), operations.join(' ')).toBeGreaterThanOrEqual(0);
      expect(operations.indexOf('CreateTags')).toBeLessThan(
        operations.indexOf('TerminateInstanceInAutoScalingGroup'),
      );
      const instanceId = first.instanceId ?? '';
      expect(sim.cluster.describeInstances([instanceId])[0]?.tags).toMatchObject({
        'gpu-medic:incident': replaced.id,
        'gpu-medic:fault': replaced.faultKey,
      });
      expect(rt.store.steps.lastOf(first.id, 'diagnose')?.detail).toMatchObject({
        verdict: 'fail',
        escalateTo: 'replace',
      });
    });
  }, 60_000);

  it('`/gpu diag <node> 2` runs it without cordoning and answers with the table, the failing GPU and DCGM’s text', async () => {
    const admin = 'UADMIN0001';
    await withHarness(
      {},
      async (h) => {
        const { sim, rt, gpuNodes } = h;
        const target = gpuNodes[0] ?? '';
        await startAndScan(rt, gpuNodes);
        sim.cluster.injectDiag(target, { test: 'memory', gpu: 3, status: 'fail' });
        const deps = { chat: createChatPort(rt), authz: createAuthorizer({ adminUsers: [admin] }) };
        const reply = await handleGpuCommand(`diag ${target} 2`, admin, deps);
        expect(reply.message.text).toContain(`❌ DCGM diagnostics level 2 failed on ${target}.`);
        expect(reply.message.text).toMatch(/\nmemory +3 +FAIL +Found 4 faulty memory elements on GPU 3\n/);
        expect(reply.message.text).toMatch(/\nsoftware +0-7 +pass\n/);
        expect(reply.message.text).toMatch(/\nmemory +0-2,4-7 +pass\n/);
        expect(diagExecs(h).map((r) => [r.command, r.exitCode])).toEqual([
          [['dcgmi', 'diag', '-r', '2', '-j'], 205],
        ]);
        // Not cordoned, no incident: a diagnostic on demand changes nothing on the node.
        expect(sim.cluster.getNode(target)?.spec?.unschedulable ?? false).toBe(false);
        expect(incidentsOn(rt, target)).toEqual([]);
        const audit = rt.store.audit.list({ node: target, limit: 5 });
        expect(audit).toContainEqual(
          expect.objectContaining({ actor: `slack:${admin}`, action: 'diagnose', result: 'fail' }),
        );
        // Someone who is not an admin is refused before anything runs.
        const denied = await handleGpuCommand(`diag ${target}`, 'UVIEWER001', deps);
        expect(denied.message.text).toContain('not allowed');
        expect(sim.cluster.diag.runs).toHaveLength(1);
      },
      (actor) => actor === 'monitor' || actor === `slack:${admin}`,
    );
  }, 45_000);
});

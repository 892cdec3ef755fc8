/**
 * Issue 14, RMA evidence, against the simulated cluster with the real AWS SDK: a DBE that a reboot does not
 * cure is replaced, and before the Auto Scaling termination the instance is tagged with the incident, the
 * fault and the faulty GPU's UUID (order checked in the AWS fake's request log); `gpu-medic report` lists the
 * replaced GPU with its UUID, instance, type and zone.
 */
import { describe, expect, it } from 'vitest';
import { main as report } from '../../src/commands/report.js';
import { renderMetrics } from '../../src/metrics/metrics.js';
import { suiteSandbox, withSimRuntime } from '../support/sim-runtime.js';
import { waitFor } from '../support/wait.js';

const sandbox = suiteSandbox('gpu-medic-rma-');

/** A minimal RFC 4180 reader for the report's rows (no field here holds a line break). */
function csvRows(text: string): Record<string, string>[] {
  const split = (line: string) =>
    [...line.matchAll(/("(?:[^"]|"")*"|[^,]*)(,|$)/g)]
      .slice(0, -1)
      .map((m) => (m[1]?.startsWith('"') ? m[1].slice(1, -1).replaceAll('""', '"') : (m[1] ?? '')));
  const [header, ...lines] = text.trimEnd().split('\r\n');
  const names = split(header ?? '');
  return lines.map((l) => Object.fromEntries(split(l).map((v, i) => [names[i] ?? `${i}`, v])));
}

describe('RMA evidence', () => {
  it('a DBE the reboot does not cure: the instance is tagged before TerminateInstanceInAutoScalingGroup, and the report lists the GPU', async () => {
    const dbPath = sandbox.dbPath();
    await withSimRuntime(
      {
        sim: {
          counters: 'full',
          nodes: 8,
          rebootDelayMs: 1500,
          replaceDelayMs: 2000,
          terminateDelayMs: 300,
          rescheduleDelayMs: 300,
          devicePluginDelayMs: 600,
          exporterReadyDelayMs: 400,
          slack: false,
          controlPort: false,
        },
        dbPath,
        scanFirst: true,
      },
      async ({ sim, rt, gpuNodes }) => {
        const target = gpuNodes.find((n) => sim.cluster.nodeInfo(n)?.autoScalingGroup) ?? '';
        expect(target).not.toBe('');
        const instanceId = sim.cluster.nodeInfo(target)?.instanceId ?? '';
        const uuid = sim.cluster.gpuState(target)[4]?.uuid ?? '';
        const zone = sim.cluster.getNode(target)?.metadata.labels?.['topology.kubernetes.io/zone'];
        expect(uuid).toMatch(/^GPU-/);
        sim.cluster.injectEcc(target, 4, { dbe: 3, persistent: true });

        const replaced = await waitFor(
          'the follow-up replace to resolve',
          () =>
            rt.store.incidents
              .listByNode(target, 100)
              .find((i) => i.plannedAction === 'replace' && i.state === 'resolved'),
          {
            context: () =>
              rt.store.incidents
                .listByNode(target, 100)
                .map((i) => [i.state, i.plannedAction, i.stateReason]),
          },
        );

        // The tags, then the termination: in the order the AWS fake served them.
        const aws = sim.log.requests.filter((r) => r.service === 'ec2' || r.service === 'autoscaling');
        const tagAt = aws.findIndex((r) => r.operation === 'CreateTags');
        const terminateAt = aws.findIndex((r) => r.operation === 'TerminateInstanceInAutoScalingGroup');
        expect(tagAt, aws.map((r) => r.operation).join(' ')).toBeGreaterThanOrEqual(0);
        expect(tagAt).toBeLessThan(terminateAt);
        expect(aws.filter((r) => r.operation === 'CreateTags')).toHaveLength(1);
        const [instance] = sim.cluster.describeInstances([instanceId]);
        expect(instance?.tags).toMatchObject({
          'gpu-medic:incident': replaced.id,
          'gpu-medic:fault': replaced.faultKey,
          'gpu-medic:gpu-uuid': uuid,
        });

        // Time to repair: the replace's three phases are on /metrics.
        const { body } = await renderMetrics(rt.metrics);
        for (const phase of ['detection_to_cordon', 'cordon_to_drained', 'drained_to_healthy']) {
          expect(body).toContain(`gpu_medic_repair_phase_seconds_count{action="replace",phase="${phase}"} 1`);
        }

        // Both repairs are recorded: the reboot that did not cure it, and the replace.
        await waitFor('the repair records', () => {
          const actions = rt.store.repairs.listSince(0).map((r) => r.action);
          return actions.includes('reboot') && actions.includes('replace') ? actions : undefined;
        });
        let out = '';
        const code = await report(['--since', '1d', '--format', 'csv'], {
          env: { ...process.env, DB_PATH: dbPath },
          write: (t) => {
            out += t;
          },
        });
        expect(code).toBe(0);
        const rows = csvRows(out);
        const row = rows.find((r) => r.action === 'replace' && r.faulty_gpu === 'yes');
        expect(row, out).toMatchObject({
          incident: replaced.id,
          outcome: 'resolved',
          node: target,
          instance_id: instanceId,
          gpu_index: '4',
          gpu_uuid: uuid,
          fault: replaced.faultKey,
          ...(zone ? { zone } : {}),
        });
        expect(row?.instance_type).toMatch(/\./);
        expect(row?.pci_bus_id).toMatch(/^00000000:/);
        expect(rows.find((r) => r.action === 'reboot')).toMatchObject({
          outcome: 'escalated',
          gpu_uuid: uuid,
        });
      },
    );
  }, 60_000);
});

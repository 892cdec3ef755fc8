import { describe, expect, it } from 'vitest';
import type { FleetCluster } from '../../fleet/summary.js';
import {
  chooseClusterMessage,
  clusterStatusMessage,
  fleetClustersMessage,
  queuedMessage,
  unknownClusterMessage,
} from './fleet.js';
import { assertSlackLimits, SlackLimits } from './limits.js';

const now = 1_700_000_600_000;
const cluster = (name: string, over: Partial<FleetCluster> = {}, incidents = 1): FleetCluster => ({
  cluster: name,
  leader: `${name}-medic-0-abc123`,
  heartbeatAt: now - 30_000,
  summary: {
    gpuNodes: 8,
    healthy: 6,
    warning: 1,
    critical: 1,
    unknown: 0,
    inRemediation: 1,
    excluded: 0,
    breaker: 'closed',
    dryRun: false,
    openIncidents: Array.from({ length: incidents }, (_, i) => ({
      id: `inc-${i}`,
      node: `ip-10-0-1-${i}.ec2.internal`,
      severity: 'critical',
      state: 'awaiting_approval',
      category: 'XID_CRITICAL_79',
    })),
  },
  ...over,
});

const withGpus = (c: FleetCluster, gpus: number): FleetCluster =>
  c.summary ? { ...c, summary: { ...c.summary, gpus } } : c;

describe('fleet answers', () => {
  it('lists every cluster with its counts and open incidents, named <cluster>/<node>', () => {
    const m = fleetClustersMessage(
      [withGpus(cluster('prod'), 64), cluster('staging', { summary: undefined })],
      now,
      300_000,
    );
    expect(m.text).toContain('prod: 8 GPU nodes (64 GPUs) · ✅ 6 · ⚠️ 1 · 🔴 1');
    expect(m.text).toContain('staging: summary unreadable');
    const all = JSON.stringify(m.blocks);
    expect(all).toContain('`prod/ip-10-0-1-0.ec2.internal`');
    expect(all).not.toContain('no leader has reported');
    assertSlackLimits(m.blocks);
  });

  it('flags a cluster whose leader has gone quiet', () => {
    const m = clusterStatusMessage(cluster('prod', { heartbeatAt: now - 600_000 }), now, 300_000);
    expect(JSON.stringify(m.blocks)).toContain('no leader has reported since');
    assertSlackLimits(m.blocks);
  });

  it('stays within Slack limits for a large fleet with many incidents', () => {
    const many = Array.from({ length: 40 }, (_, i) => cluster(`cluster-${i}-${'x'.repeat(80)}`, {}, 600));
    const m = fleetClustersMessage(many, now, 300_000);
    assertSlackLimits(m.blocks);
    expect(m.text.length).toBeLessThanOrEqual(SlackLimits.messageText);
    expect(JSON.stringify(m.blocks)).toContain('… and 25 more clusters');
  });

  it('says when no cluster has reported', () => {
    expect(fleetClustersMessage([], now, 300_000).text).toContain('No cluster has reported yet');
  });

  it('offers each cluster as a command to run, keeping the rest of the command', () => {
    const m = chooseClusterMessage('exclude n1 2h maintenance', 'n1', ['prod/n1', 'staging/n1']);
    expect(m.text).toContain('`/gpu exclude prod/n1 2h maintenance`');
    expect(m.text).toContain('`/gpu exclude staging/n1 2h maintenance`');
  });

  it('names the unknown cluster and the known ones, and where a queued answer comes', () => {
    expect(unknownClusterMessage('qa', ['prod', 'staging']).text).toBe(
      '⚠️ No cluster named `qa` in this fleet. Known clusters: `prod`, `staging`.',
    );
    expect(queuedMessage('prod', 'thread').text).toContain('in this thread');
    expect(queuedMessage('prod', 'channel').text).toContain('answers here');
  });
});

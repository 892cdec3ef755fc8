import { describe, expect, it } from 'vitest';
import { signalCoverage } from '../../domain/coverage.js';
import type { SignalFamily } from '../../domain/gpu.js';
import type { AuditEntry, Exclusion } from '../../domain/ports.js';
import { fullUsage, parseCommandButtonValue, usage } from '../commands/parse.js';
import type { FleetSummary, IncidentSummary, NodeDetail } from '../format.js';
import { appHomeView } from './home.js';
import { assertSlackLimits, SlackLimits } from './limits.js';
import {
  commandConfirmActionIds,
  commandErrorMessage,
  confirmCommandMessage,
  coverageLine,
  exclusionsMessage,
  fleetStatusMessage,
  helpMessage,
  historyMessage,
  nodeStatusMessage,
  sortIncidents,
} from './status.js';

const at = Date.UTC(2026, 10, 29, 3, 12, 5);

function inc(i: number, overrides: Partial<IncidentSummary> = {}): IncidentSummary {
  return {
    id: `inc-${i}`,
    node: `ip-10-0-${Math.floor(i / 250)}-${i % 250}.ec2.internal`,
    severity: i % 3 === 0 ? 'critical' : 'warning',
    category: i % 3 === 0 ? 'XID_CRITICAL_79' : 'XID_WARNING_13',
    xid: i % 3 === 0 ? 79 : 13,
    gpu: i % 8,
    state: i % 3 === 0 ? 'replacing' : 'detected',
    plannedAction: i % 3 === 0 ? 'replace' : 'none',
    mode: i % 3 === 0 ? 'auto' : 'off',
    firstSeen: at - i * 60_000,
    ...overrides,
  };
}

function fleet(overrides: Partial<FleetSummary> = {}): FleetSummary {
  return {
    cluster: 'prod-training',
    at,
    gpuNodes: 10,
    healthy: 7,
    warning: 1,
    critical: 1,
    unknown: 1,
    inRemediation: 1,
    excluded: 1,
    breaker: { state: 'closed' },
    llm: { calls: 12, cacheHits: 30, fallbacks: 1 },
    openIncidents: [inc(0), inc(1)],
    ...overrides,
  };
}

const audit: AuditEntry[] = [
  {
    at: at - 60_000,
    actor: 'slack:U0123ABCD',
    action: 'approve',
    node: 'n1',
    incidentId: 'inc-0',
    result: 'ok',
    reason: 'replace',
  },
  { at: at - 120_000, actor: 'monitor', action: 'cordon', node: 'n1', result: 'done' },
];

function node(gpus: number, overrides: Partial<NodeDetail> = {}): NodeDetail {
  return {
    node: 'ip-10-0-1-2.us-west-2.compute.internal',
    cluster: 'prod-training',
    instanceId: 'i-0abc1234def567890',
    instanceType: 'p4d.24xlarge',
    nodeGroup: 'gpu-a100',
    ready: true,
    unschedulable: true,
    expectedGpus: gpus,
    allocatableGpus: gpus - 1,
    verdict: {
      severity: 'critical',
      category: 'XID_CRITICAL_79',
      xid: 79,
      gpu: 3,
      source: 'rules',
      explanation: 'GPU 3 fell off the bus.',
    },
    checkedAt: at,
    gpus: Array.from({ length: gpus }, (_, i) => ({
      index: gpus - 1 - i,
      model: 'NVIDIA A100-SXM4-40GB',
      health: gpus - 1 - i === 3 ? 'fail' : 'pass',
      xidLast: gpus - 1 - i === 3 ? 79 : 0,
      temperatureC: 41.6 + i,
      eccDbeVolatile: 0,
      utilizationPct: 97,
    })),
    openIncident: inc(0),
    lastActions: audit,
    ...overrides,
  };
}

const exclusions: Exclusion[] = [
  {
    node: 'ip-10-0-1-2.ec2.internal',
    reason: 'vendor RMA <ticket>',
    createdBy: 'slack:U0123ABCD',
    createdAt: at - 3_600_000,
    expiresAt: at + 7_200_000,
  },
  { node: 'ip-10-0-1-3.ec2.internal', reason: '', createdBy: 'U0456EFGH1', createdAt: at },
];

const messages = [
  ['fleet-healthy', () => fleetStatusMessage(fleet({ openIncidents: [], warning: 0, critical: 0 }))],
  ['fleet-incidents', () => fleetStatusMessage(fleet())],
  [
    'fleet-breaker-open-many',
    () =>
      fleetStatusMessage(
        fleet({
          breaker: { state: 'open', reason: '4 of 10 GPU nodes unhealthy (limit 20 %)', since: at - 600_000 },
          dryRun: true,
          openIncidents: Array.from({ length: 300 }, (_, i) => inc(i)),
        }),
      ),
  ],
  ['node-8-gpu', () => nodeStatusMessage(node(8, { exclusion: exclusions[0] }))],
  [
    'node-40-gpu-pathological',
    () =>
      nodeStatusMessage(node(40, { lastActions: Array.from({ length: 200 }, () => audit[0] as AuditEntry) })),
  ],
  [
    'node-unscanned',
    () =>
      nodeStatusMessage({
        node: 'n1',
        verdict: { severity: 'healthy', category: 'HEALTHY', source: 'rules', explanation: '' },
        gpus: [],
        lastActions: [],
      }),
  ],
  ['exclusions', () => exclusionsMessage(exclusions, at)],
  ['exclusions-empty', () => exclusionsMessage([])],
  ['history', () => historyMessage('n1', audit)],
  ['history-empty', () => historyMessage('n1', [])],
  ['help', () => helpMessage()],
] as const;

describe('status builders', () => {
  it.each(messages)('%s matches its golden file and Slack limits', async (name, build) => {
    const message = build();
    assertSlackLimits(message.blocks, { text: message.text });
    await expect(JSON.stringify(message, null, 2)).toMatchFileSnapshot(`./__snapshots__/status-${name}.snap`);
  });

  it('lists the ten most severe, oldest open incidents and counts the rest', () => {
    const msg = fleetStatusMessage(fleet({ openIncidents: Array.from({ length: 25 }, (_, i) => inc(i)) }));
    const json = JSON.stringify(msg.blocks);
    expect(json).toContain('… and 15 more open incidents');
    expect(json.match(/🔴/g)?.length).toBeGreaterThanOrEqual(9);
    expect(sortIncidents([inc(1), inc(3), inc(0)]).map((i) => i.id)).toEqual(['inc-3', 'inc-0', 'inc-1']);
  });

  it('says the breaker state and the LLM stats', () => {
    const json = JSON.stringify(
      fleetStatusMessage(fleet({ breaker: { state: 'paused', reason: 'paused by <@U1>' } })),
    );
    expect(json).toContain('⏸️ Automatic actions paused: paused by &lt;@U1&gt;');
    expect(json).toContain('12 calls · 30 cache hits · 1 fallback');
  });

  it('says once and plainly that Bedrock refused the model, inside the LLM field', () => {
    const llm = {
      calls: 1,
      cacheHits: 0,
      fallbacks: 3,
      modelUnavailable: {
        modelId: 'us.anthropic.claude-3-7-sonnet-20250219-v1:0',
        reason: 'ValidationException: The provided model identifier is invalid.',
      },
    };
    const msg = fleetStatusMessage(fleet({ llm }));
    assertSlackLimits(msg.blocks, { text: msg.text });
    const fields = JSON.stringify(msg.blocks[1]);
    expect(fields).toContain('us.anthropic.claude-3-7-sonnet-20250219-v1:0');
    expect(fields).toContain('rules only until BEDROCK_MODEL_ID names an active model');
    expect(fields.match(/refused by Bedrock/g)).toHaveLength(1);
    expect(JSON.stringify(fleetStatusMessage(fleet()).blocks)).not.toContain('refused');
  });

  it('shows every GPU of a 40-GPU node in a fixed-width table', () => {
    const json = JSON.stringify(nodeStatusMessage(node(40)).blocks);
    for (const i of [0, 9, 39]) expect(json).toContain(`\\n${String(i).padEnd(5)}pass`);
    expect(json).toContain('fail    79');
  });

  it("counts a MIG node's GPUs against DCGM only (its devices are slices, not GPUs)", () => {
    const whole = JSON.stringify(nodeStatusMessage(node(8)).blocks);
    expect(whole).toContain('8 seen by DCGM · 7 of 8 allocatable');
    const mig = JSON.stringify(nodeStatusMessage(node(8, { allocatableGpus: undefined })).blocks);
    expect(mig).toContain('8 of 8 seen by DCGM');
    expect(mig).not.toContain('allocatable');
  });

  it('lists node problems apart from GPU incidents, and counts them on their own', () => {
    const kernel = inc(50, {
      severity: 'warning',
      category: 'NODE_CONDITION',
      xid: undefined,
      gpu: undefined,
      state: 'detected',
      plannedAction: 'none',
      mode: 'off',
      faultKey: 'condition:KernelReady',
      explanation: 'Node condition KernelReady is False (KernelBug): a node problem, not a GPU fault.',
    });
    const msg = fleetStatusMessage(fleet({ openIncidents: [inc(0), kernel] }));
    assertSlackLimits(msg.blocks, { text: msg.text });
    const json = JSON.stringify(msg.blocks);
    expect(json).toContain('*Node problems* (not GPU faults)');
    expect(json).toContain('KernelReady is False (KernelBug) — ');
    expect(json).not.toContain('a node problem, not a GPU fault');
    expect(json).toContain(JSON.stringify('*Open incidents*\n1'));
    expect(json).toContain('⚠️ 1 (not GPU faults)');
    // Without node problems nothing changes.
    expect(JSON.stringify(fleetStatusMessage(fleet()).blocks)).not.toContain('Node problems');
  });

  it('a node status shows its node problems', () => {
    const json = JSON.stringify(
      nodeStatusMessage({
        ...node(8),
        nodeProblems: [
          'Node condition NetworkingReady is False (InterfaceNotUp): a node problem, not a GPU fault.',
        ],
      }).blocks,
    );
    expect(json).toContain('*Node problems* (not GPU faults)\\n⚠️ Node condition NetworkingReady is False');
  });

  it('shows exclusions with time left and never pings from a reason', () => {
    const json = JSON.stringify(exclusionsMessage(exclusions, at));
    expect(json).toContain('(2h left)');
    expect(json).toContain('vendor RMA &lt;ticket&gt;');
    expect(json).toContain('until removed');
    expect(json).toContain('<@U0456EFGH1>');
  });
});

describe('detection coverage line', () => {
  const stock: SignalFamily[] = ['xid', 'row_remap', 'thermal'];
  const full: SignalFamily[] = [...stock, 'xid_count', 'ecc', 'retired_pages', 'nvlink', 'health'];
  const reads = (n: number, signals: SignalFamily[]) => Array.from({ length: n }, () => ({ signals }));

  it('names what 40 stock exporters leave out, in one line', () => {
    const line = coverageLine(signalCoverage(reads(40, stock)));
    expect(line).toBe(
      '⚠️ XID counts, ECC counters, retired pages, NVLink error counters, DCGM health: 0 of 40 nodes — see README (Detection coverage)',
    );
  });

  it('groups families by how many nodes carry them, and counts only nodes read', () => {
    const coverage = signalCoverage([
      ...reads(38, stock),
      ...reads(2, full),
      { error: { kind: 'timeout', message: 'no answer' } },
    ]);
    expect(coverage.nodes).toBe(41);
    expect(coverageLine(coverage)).toBe(
      '⚠️ XID counts, ECC counters, retired pages, NVLink error counters, DCGM health: 2 of 40 nodes — see README (Detection coverage)',
    );
  });

  it('says all is covered when every node carries every expected family, and nothing before a read', () => {
    expect(coverageLine(signalCoverage(reads(3, full)))).toBe(
      '📡 Detection coverage: every signal family on all 3 nodes read',
    );
    expect(coverageLine(signalCoverage([]))).toBeUndefined();
    expect(coverageLine(undefined)).toBeUndefined();
  });

  it('names what was not read on one node in /gpu status <node>', () => {
    const json = JSON.stringify(nodeStatusMessage({ ...node(8), signals: stock }).blocks);
    expect(json).toContain(
      '⚠️ Not read on this node: XID counts, ECC counters, retired pages, NVLink error counters, DCGM health',
    );
    expect(coverageLine(undefined)).toBeUndefined();
    expect(JSON.stringify(nodeStatusMessage({ ...node(8), signals: full }).blocks)).not.toContain('Not read');
    expect(JSON.stringify(nodeStatusMessage(node(8)).blocks)).not.toContain('Not read');
  });

  it('shows in /gpu status and on App Home', () => {
    const summary = fleet({ coverage: signalCoverage(reads(40, stock)) });
    for (const blocks of [fleetStatusMessage(summary).blocks, appHomeView(summary).blocks]) {
      assertSlackLimits(blocks, { maxBlocks: SlackLimits.viewBlocks });
      expect(JSON.stringify(blocks)).toContain(
        'ECC counters, retired pages, NVLink error counters, DCGM health: 0 of 40 nodes',
      );
    }
  });
});

describe('appHomeView', () => {
  it('matches its golden file', async () => {
    const view = appHomeView(fleet(), fleet().openIncidents);
    assertSlackLimits(view.blocks, { maxBlocks: SlackLimits.viewBlocks });
    expect(view.type).toBe('home');
    await expect(JSON.stringify(view, null, 2)).toMatchFileSnapshot('./__snapshots__/home.snap');
  });

  it.each([0, 1, 79, 80, 81, 94, 95, 5000])('stays within 100 blocks with %i open incidents', (count) => {
    const incidents = Array.from({ length: count }, (_, i) => inc(i));
    const view = appHomeView(fleet({ openIncidents: incidents }));
    assertSlackLimits(view.blocks, { maxBlocks: SlackLimits.viewBlocks });
    const listed = view.blocks.filter(
      (b) => b.type === 'section' && /ip-10-0/.test(JSON.stringify(b)),
    ).length;
    const more = JSON.stringify(view.blocks).match(/… and (\d+) more open incidents/);
    expect(listed + Number(more?.[1] ?? 0)).toBe(count);
  });
});

describe('command answers', () => {
  it('explains a parse error with its usage, escaped', () => {
    const msg = commandErrorMessage({
      error: "Unknown subcommand 'rebot'. Did you mean 'reboot'?",
      usage: usage.reboot,
    });
    assertSlackLimits(msg.blocks, { text: msg.text });
    expect(msg.text).toBe(
      "⚠️ Unknown subcommand 'rebot'. Did you mean 'reboot'?\nUsage: `/gpu reboot &lt;node&gt; [reason…]`",
    );
    const full = commandErrorMessage({ error: 'x', usage: fullUsage });
    assertSlackLimits(full.blocks, { text: full.text });
    expect(JSON.stringify(full.blocks)).toContain('/gpu pause');
  });

  it.each([
    'cordon',
    'uncordon',
    'reboot',
    'replace',
  ] as const)('asks to confirm %s and round-trips the command', async (kind) => {
    const cmd = { kind, node: 'ip-10-0-1-2.ec2.internal', reason: 'XID 48 <again>' };
    const msg = confirmCommandMessage(cmd);
    assertSlackLimits(msg.blocks, { text: msg.text });
    const actions = msg.blocks.find((b) => b.type === 'actions');
    if (actions?.type !== 'actions') throw new Error('no actions');
    const ids = actions.elements.map((e) => (e.type === 'button' ? e.action_id : ''));
    expect(ids).toEqual([commandConfirmActionIds.confirm, commandConfirmActionIds.cancel]);
    for (const e of actions.elements) {
      if (e.type !== 'button') throw new Error('not a button');
      expect(parseCommandButtonValue(e.value)).toEqual(cmd);
    }
    expect(JSON.stringify(msg.blocks)).toContain('XID 48 &lt;again&gt;');
    await expect(JSON.stringify(msg, null, 2)).toMatchFileSnapshot(`./__snapshots__/confirm-${kind}.snap`);
  });

  it.each([
    ['{"k":"delete","n":"n1"}', /k:/],
    ['{"k":"reboot","n":"N1"}', /not a valid Kubernetes node name/],
    ['nope', /not JSON/],
  ])('refuses confirmation value %s', (value, error) => {
    const r = parseCommandButtonValue(value);
    expect('error' in r && r.error).toMatch(error);
  });
});

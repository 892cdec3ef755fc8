import { describe, expect, it } from 'vitest';
import { slackIncident, slackT0 } from '../../../test/support/recording-chat-port.js';
import type { Incident } from '../../domain/incident.js';
import { parseButtonValue } from '../commands/parse.js';
import {
  AlertButtonActions,
  type AlertView,
  alertActionFromId,
  alertActionIds,
  alertMessage,
  decisionLine,
} from './alert.js';
import type { KnownBlock } from './kit.js';
import { assertSlackLimits, SlackLimits } from './limits.js';

const t0 = slackT0;

/** The alert's incident: the chat layer's, on a fully qualified node name, detected in auto mode. */
function incident(overrides: Partial<Incident> = {}): Incident {
  return slackIncident({
    id: 'inc-01JDX8Y3K4',
    node: 'ip-10-0-1-2.us-west-2.compute.internal',
    mode: 'auto',
    explanation:
      'GPU 3 has fallen off the bus: the driver lost contact with it; the node needs a new instance.',
    evidence: [
      "NVRM: Xid (PCI:0000:91:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.",
    ],
    state: 'detected',
    ...overrides,
  });
}

const eccReboot: AlertView = {
  cluster: 'prod-training',
  incident: incident({
    id: 'inc-ecc',
    node: 'ip-10-0-4-17.us-west-2.compute.internal',
    instanceId: 'i-0ecc0000000000001',
    instanceType: 'p5.48xlarge',
    nodeGroup: 'gpu-h100',
    faultKey: 'ecc_dbe:gpu0',
    category: 'ECC_ERROR',
    xid: undefined,
    gpu: 0,
    recommendedAction: 'reboot',
    plannedAction: 'reboot',
    mode: 'approve',
    state: 'awaiting_approval',
    explanation:
      'GPU 0 reported 2 volatile double-bit ECC errors: its memory is corrupt until the GPU is reset.',
    evidence: ['DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{gpu="0"} 2', 'DCGM_FI_DEV_RETIRED_PENDING{gpu="0"} 1'],
    count: 4,
  }),
};

const cases: [string, AlertView][] = [
  ['xid79-critical-auto-replace', { cluster: 'prod-training', incident: incident() }],
  ['ecc-dbe-reboot-approval', eccReboot],
  [
    'xid13-warning-alert-only',
    {
      cluster: 'prod-training',
      incident: incident({
        id: 'inc-x13',
        category: 'XID_WARNING_13',
        severity: 'warning',
        xid: 13,
        gpu: 5,
        recommendedAction: 'restart_app',
        plannedAction: 'none',
        mode: 'off',
        explanation: 'Graphics engine exception (XID 13): usually an application bug; the GPU is fine.',
        evidence: [
          "NVRM: Xid (PCI:0000:b5:00): 13, pid='<unknown>', name=<unknown>, Graphics SM Warp Exception on (GPC 1, TPC 3, SM 0): Out Of Range Address",
        ],
      }),
    },
  ],
  [
    'llm-sourced-category',
    {
      cluster: 'prod-training',
      node: { instanceType: 'g5.48xlarge', nodeGroup: 'karpenter-gpu' },
      incident: incident({
        id: 'inc-llm',
        instanceType: undefined,
        nodeGroup: undefined,
        category: 'NVLINK_ERROR',
        xid: undefined,
        gpu: undefined,
        source: 'llm',
        plannedAction: 'reboot',
        mode: 'approve',
        state: 'awaiting_approval',
        explanation: 'NVSwitch reports a fatal link training fault <!channel> on link 48 & 49.',
        evidence: [
          '[6781753.400584] nvidia-nvswitch1: SXid (PCI:0000:06:00.0): 20034, Fatal, Link 48 LTSSM Fault Up',
        ],
        preexisting: true,
      }),
    },
  ],
  [
    'acted-on-replace-approved',
    {
      cluster: 'prod-training',
      incident: incident({ mode: 'approve', state: 'draining' }),
      actedBy: { action: 'replace', userId: 'U0123ABCD' },
      statusLine: 'Draining: 2 of 5 pods evicted',
    },
  ],
  [
    'resolved',
    {
      cluster: 'prod-training',
      incident: incident({ state: 'resolved', closedAt: t0 + 7 * 60_000 + 12_000 }),
    },
  ],
  [
    'huge-evidence-truncated',
    {
      cluster: 'prod-training',
      incident: incident({
        id: 'inc-huge',
        evidence: Array.from(
          { length: 500 },
          (_, i) =>
            `NVRM: Xid (PCI:0000:91:00): 79, pid=${1000 + i}, GPU has fallen off the bus. ${'x'.repeat(i % 7 === 0 ? 900 : 40)}`,
        ),
        explanation: 'y'.repeat(5000),
      }),
    },
  ],
  [
    'pathological-40-gpu-node',
    {
      cluster: 'c'.repeat(300),
      incident: incident({
        id: 'inc-40',
        node: `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}`,
        instanceType: 'x'.repeat(200),
        nodeGroup: 'g'.repeat(3000),
        category: 'GPU_MISSING_'.repeat(300),
        gpu: 39,
        count: 100_000,
        evidence: Array.from(
          { length: 40 },
          (_, i) => `GPU ${i}: ${'```'} fell off \`\`\` <@U1> ${'z'.repeat(100)}`,
        ),
      }),
    },
  ],
];

function buttons(blocks: KnownBlock[]) {
  return blocks.flatMap((b) => (b.type === 'actions' ? b.elements : []));
}

describe('alertMessage', () => {
  it.each(cases)('%s matches its golden file and Slack limits', async (name, view) => {
    const message = alertMessage(view);
    assertSlackLimits(message.blocks, { text: message.text });
    await expect(JSON.stringify(message, null, 2)).toMatchFileSnapshot(`./__snapshots__/alert-${name}.snap`);
  });

  it('offers the six buttons with the documented action ids and a parseable value', () => {
    const message = alertMessage(eccReboot);
    const els = buttons(message.blocks);
    expect(els.map((e) => e.type === 'button' && e.action_id)).toEqual([
      'gpu_reset',
      'gpu_replace',
      'gpu_reboot',
      'gpu_cordon',
      'gpu_diagnose',
      'gpu_exclude',
      'gpu_dismiss',
    ]);
    for (const el of els) {
      if (el.type !== 'button') throw new Error('not a button');
      expect(parseButtonValue(el.value)).toEqual({
        incidentId: 'inc-ecc',
        node: eccReboot.incident.node,
        cluster: 'prod-training',
      });
    }
  });

  it('makes Reset GPU, Replace and Reboot dangerous, with a confirm dialog naming the node', () => {
    const els = buttons(alertMessage(eccReboot).blocks);
    for (const id of ['gpu_reset', 'gpu_replace', 'gpu_reboot']) {
      const b = els.find((e) => e.type === 'button' && e.action_id === id);
      if (b?.type !== 'button') throw new Error(`missing ${id}`);
      expect(b.style).toBe('danger');
      expect(b.confirm?.text.text).toContain(eccReboot.incident.node);
      expect(b.confirm?.deny?.text).toBe('Cancel');
    }
    const cordon = els.find((e) => e.type === 'button' && e.action_id === 'gpu_cordon');
    expect(cordon?.type === 'button' && cordon.style).toBe('primary');
    const dismiss = els.find((e) => e.type === 'button' && e.action_id === 'gpu_dismiss');
    expect(dismiss?.type === 'button' && dismiss.confirm).toBeUndefined();
  });

  it.each([
    [
      'acted on',
      { ...eccReboot, actedBy: { action: 'reboot', userId: 'U0123ABCD' } } as AlertView,
      '✋ Reboot approved by <@U0123ABCD>',
    ],
    [
      'excluded',
      { ...eccReboot, actedBy: { action: 'exclude', userId: 'U0123ABCD' } } as AlertView,
      '🙈 Node excluded by <@U0123ABCD>',
    ],
    ['automatic', { cluster: 'c', incident: incident() }, '⚙️ Automatic replace in progress'],
    [
      'automatic dry run',
      { cluster: 'c', incident: incident(), dryRun: true },
      '🧪 Automatic replace (dry run',
    ],
    [
      'resolved',
      { cluster: 'c', incident: incident({ state: 'resolved', closedAt: t0 + 432_000 }) },
      '✅ Resolved in 7m 12s',
    ],
    [
      'failed',
      { cluster: 'c', incident: incident({ state: 'failed', stateReason: 'EC2 said <no>' }) },
      '❌ Remediation failed: EC2 said &lt;no&gt;',
    ],
    [
      'dismissed',
      {
        ...eccReboot,
        incident: { ...eccReboot.incident, state: 'dismissed' },
        actedBy: { action: 'dismiss', userId: 'U0123ABCD' },
      } as AlertView,
      '🙈 Dismissed by <@U0123ABCD>',
    ],
    [
      'in progress via command',
      { ...eccReboot, incident: { ...eccReboot.incident, state: 'rebooting' } } as AlertView,
      '⚙️ Reboot in progress (rebooting)',
    ],
  ])('replaces the buttons once decided: %s', (_name, view, expected) => {
    const message = alertMessage(view);
    expect(buttons(message.blocks)).toEqual([]);
    const last = message.blocks.at(-1);
    expect(last?.type).toBe('context');
    expect(JSON.stringify(last)).toContain(JSON.stringify(expected).slice(1, -1));
    expect(message.text).toContain(expected);
    expect(decisionLine(view)).toContain(expected);
  });

  it('shows buttons for an alert-only warning so a human can still act', () => {
    const view = cases.find(([n]) => n === 'xid13-warning-alert-only')?.[1];
    if (!view) throw new Error('fixture missing');
    const message = alertMessage(view);
    expect(buttons(message.blocks)).toHaveLength(7);
    expect(JSON.stringify(message.blocks)).toContain('Policy: alert only');
  });

  it('escapes untrusted text so log lines cannot ping the channel or break the code block', () => {
    const view = cases.find(([n]) => n === 'llm-sourced-category')?.[1];
    if (!view) throw new Error('fixture missing');
    const json = JSON.stringify(alertMessage(view));
    expect(json).not.toContain('<!channel>');
    expect(json).toContain('&lt;!channel&gt;');
    const huge = alertMessage(cases.find(([n]) => n === 'pathological-40-gpu-node')?.[1] as AlertView);
    const evidence = huge.blocks.find((b) => b.type === 'section' && b.text?.text.startsWith('*Evidence*'));
    const text = evidence?.type === 'section' ? (evidence.text?.text ?? '') : '';
    expect(text.match(/```/g)).toHaveLength(2);
    expect(text).not.toContain('<@U1>');
  });

  it('cuts a huge evidence list and says how much was left out', () => {
    const view = cases.find(([n]) => n === 'huge-evidence-truncated')?.[1] as AlertView;
    const text = JSON.stringify(alertMessage(view).blocks);
    expect(text).toMatch(/… \d+ more lines/);
  });

  it('has a meaningful fallback text', () => {
    expect(alertMessage(eccReboot).text).toBe(
      '🔴 critical GPU fault on ip-10-0-4-17.us-west-2.compute.internal (p5.48xlarge) in prod-training: ECC_ERROR on GPU 0 — ' +
        'GPU 0 reported 2 volatile double-bit ECC errors: its memory is corrupt until the GPU is reset. — Policy: reboot · waiting for approval',
    );
  });

  it.each(AlertButtonActions)('maps action id back to %s', (action) => {
    expect(alertActionFromId(alertActionIds[action])).toBe(action);
  });

  it('rejects unknown action ids', () => {
    expect(alertActionFromId('gpu_reboot_now')).toBeUndefined();
    expect(alertActionFromId('xgpu_reboot')).toBeUndefined();
  });

  it('never exceeds the limits for any header length', () => {
    for (const len of [1, 149, 150, 151, 253]) {
      const m = alertMessage({
        cluster: 'c',
        incident: incident({ node: 'n'.repeat(len), instanceType: 'p'.repeat(len) }),
      });
      assertSlackLimits(m.blocks, { text: m.text });
      const h = m.blocks[0];
      expect(h?.type === 'header' && h.text.text.length).toBeLessThanOrEqual(SlackLimits.headerText);
    }
  });
});

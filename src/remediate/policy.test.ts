import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { testPolicy } from '../../test/support/engine-harness.js';
import { loadDcgmFrCatalog, loadXidCatalog } from '../classify/catalog.js';
import { classifySnapshot } from '../classify/rules.js';
import { parseDump } from '../collect/parse/dump.js';
import type { FindingKind, Severity } from '../domain/finding.js';
import type { PolicyMode, RemediationAction } from '../domain/incident.js';
import { defaultClassificationPolicy } from '../domain/policy.js';
import { decide, type FaultInput, type RemediationHistory, ResetXids } from './policy.js';

const now = Date.parse('2025-01-02T00:00:00Z');
const clean: RemediationHistory = { rebootsForFault: 0, remediationsInWindow: 0 };

function fault(kind: FindingKind, severity: Severity, extra: Partial<FaultInput> = {}): FaultInput {
  return { kind, severity, category: 'X', source: 'rules', faultKey: `${kind}:gpu0`, node: 'n1', ...extra };
}

describe('decide: the default table', () => {
  it.each<[string, FaultInput, RemediationAction, PolicyMode]>([
    ['XID 79', fault('xid', 'critical', { xid: 79 }), 'replace', 'auto'],
    // The catalog's reset_gpu XIDs: a GPU reset first (it used to be replace for 74/119/120/140, reboot for the rest).
    ['XID 74', fault('xid', 'critical', { xid: 74 }), 'reset', 'auto'],
    ['XID 119', fault('xid', 'critical', { xid: 119 }), 'reset', 'auto'],
    ['XID 120', fault('xid', 'critical', { xid: 120 }), 'reset', 'auto'],
    ['XID 121', fault('xid', 'critical', { xid: 121 }), 'replace', 'auto'],
    ['XID 140', fault('xid', 'critical', { xid: 140 }), 'reset', 'auto'],
    ['XID 62', fault('xid', 'critical', { xid: 62 }), 'reset', 'auto'],
    ['other critical XID 151 (catalog: reboot)', fault('xid', 'critical', { xid: 151 }), 'reboot', 'auto'],
    ['ECC DBE', fault('ecc_dbe', 'critical'), 'reboot', 'auto'],
    ['row-remap failure', fault('row_remap_failure', 'critical'), 'reboot', 'auto'],
    ['XID 48', fault('xid', 'critical', { xid: 48 }), 'reset', 'auto'],
    ['XID 64', fault('xid', 'critical', { xid: 64 }), 'reset', 'auto'],
    ['XID 95', fault('xid', 'critical', { xid: 95 }), 'reset', 'auto'],
    ['GPU missing', fault('gpu_missing', 'critical'), 'reboot', 'approve'],
    ['DCGM health FAIL', fault('health', 'critical'), 'reboot', 'approve'],
    [
      'XID 154 whose action the rules could not read (exporter only)',
      fault('xid', 'critical', { xid: 154, recommendedAction: 'reboot' }),
      'reboot',
      'approve',
    ],
    ['XID 154 "Drain P2P" from the kernel line', fault('xid', 'warning', { xid: 154 }), 'none', 'off'],
    ['app XID 13', fault('xid', 'warning', { xid: 13 }), 'none', 'off'],
    ['app XID 31 (the sample rebooted on it)', fault('xid', 'warning', { xid: 31 }), 'none', 'off'],
    ['app XID 43', fault('xid', 'warning', { xid: 43 }), 'none', 'off'],
    ['app XID 45', fault('xid', 'warning', { xid: 45 }), 'none', 'off'],
    ['app XID 94', fault('xid', 'warning', { xid: 94 }), 'none', 'off'],
    ['SBE storm', fault('sbe_storm', 'warning'), 'none', 'off'],
    ['thermal', fault('thermal', 'warning'), 'none', 'off'],
    ['health WARN', fault('health', 'warning'), 'none', 'off'],
    ['NVLink warning', fault('nvlink', 'warning'), 'none', 'off'],
    ['collection failed', fault('collection', 'critical', { category: 'COLLECTION_FAILED' }), 'none', 'off'],
    [
      'node condition (KernelReady=False)',
      fault('condition', 'warning', { category: 'NODE_CONDITION', faultKey: 'condition:KernelReady' }),
      'none',
      'off',
    ],
    [
      'node condition, even if something rated it critical',
      fault('condition', 'critical', { category: 'NODE_CONDITION', recommendedAction: 'reboot' }),
      'none',
      'off',
    ],
    [
      'custom critical category asking replace',
      fault('unknown', 'critical', { recommendedAction: 'replace' }),
      'replace',
      'approve',
    ],
    [
      'custom critical category asking monitor',
      fault('unknown', 'critical', { recommendedAction: 'monitor' }),
      'none',
      'off',
    ],
  ])('%s → %s / %s', (_, input, action, mode) => {
    const d = decide(input, testPolicy(), clean, now);
    expect([d.action, d.mode]).toEqual([action, mode]);
    expect(d.reason.length).toBeGreaterThan(10);
  });
});

describe('decide: rules', () => {
  it('the first matching rule wins over the defaults, and every given matcher must match', () => {
    const policy = testPolicy({
      rules: [
        { match: { xid: 79, source: 'llm' }, action: 'none', mode: 'off' },
        { match: { xid: 79 }, action: 'cordon', mode: 'approve' },
        { match: { xid: 79 }, action: 'reboot', mode: 'auto' },
      ],
    });
    const d = decide(fault('xid', 'critical', { xid: 79 }), policy, clean, now);
    expect([d.action, d.mode]).toEqual(['cordon', 'approve']);
    expect(d.reason).toContain('rule 2');
  });

  it('a policy rule may act on a node condition (NODE_CONDITION is alert only by default, not by law)', () => {
    const policy = testPolicy({
      rules: [{ match: { category: 'NODE_CONDITION' }, action: 'cordon', mode: 'approve' }],
    });
    const d = decide(fault('condition', 'warning', { category: 'NODE_CONDITION' }), policy, clean, now);
    expect([d.action, d.mode]).toEqual(['cordon', 'approve']);
  });

  it('a rule can carry force', () => {
    const policy = testPolicy({
      rules: [{ match: { category: 'ECC_ERROR' }, action: 'reboot', mode: 'auto', force: true }],
    });
    expect(decide(fault('ecc_dbe', 'critical', { category: 'ECC_ERROR' }), policy, clean, now).force).toBe(
      true,
    );
  });
});

describe('decide: escalation and humans', () => {
  it('a fault that returns within 24 h of a reboot is replaced', () => {
    const d = decide(
      fault('ecc_dbe', 'critical'),
      testPolicy({
        escalation: {
          returnWithinHours: 24,
          maxRebootsPerFault: 5,
          maxRemediationsPerNode: 3,
          windowDays: 7,
        },
      }),
      { rebootsForFault: 1, lastRebootAt: now - 3_600_000, remediationsInWindow: 1 },
      now,
    );
    expect([d.action, d.mode, d.escalated]).toEqual(['replace', 'auto', true]);
  });

  it('after 25 h, with reboots under the limit, it is rebooted again', () => {
    const d = decide(
      fault('ecc_dbe', 'critical'),
      testPolicy({
        escalation: {
          returnWithinHours: 24,
          maxRebootsPerFault: 5,
          maxRemediationsPerNode: 3,
          windowDays: 7,
        },
      }),
      { rebootsForFault: 1, lastRebootAt: now - 25 * 3_600_000, remediationsInWindow: 1 },
      now,
    );
    expect(d.action).toBe('reboot');
  });

  it('maxRebootsPerFault reboots already done → replace', () => {
    const d = decide(
      fault('xid', 'critical', { xid: 151 }),
      testPolicy(),
      { rebootsForFault: 1, remediationsInWindow: 1 },
      now,
    );
    expect([d.action, d.escalated]).toEqual(['replace', true]);
  });

  it('the ladder: a reset already tried for the fault → reboot; a reboot too → replace', () => {
    const afterReset = decide(
      fault('xid', 'critical', { xid: 119 }),
      testPolicy(),
      { rebootsForFault: 0, remediationsInWindow: 1, resetsForFault: 1, lastResetAt: now - 60_000 },
      now,
    );
    expect([afterReset.action, afterReset.mode, afterReset.escalated]).toEqual(['reboot', 'auto', true]);
    expect(afterReset.reason).toContain('Escalated to reboot');
    const afterReboot = decide(
      fault('xid', 'critical', { xid: 119 }),
      testPolicy(),
      { rebootsForFault: 1, remediationsInWindow: 2, resetsForFault: 1, lastRebootAt: now - 60_000 },
      now,
    );
    expect([afterReboot.action, afterReboot.escalated]).toEqual(['replace', true]);
  });

  it('ResetXids is the catalog: every critical reset_gpu XID, nothing else', () => {
    const fromCatalog = loadXidCatalog()
      .all()
      .filter((e) => e.catalogAction === 'reset_gpu' && e.severity === 'critical')
      .map((e) => e.xid);
    expect([...ResetXids].sort((a, b) => a - b)).toEqual(fromCatalog);
  });

  it('a node remediated maxRemediationsPerNode times in the window goes to a human', () => {
    const d = decide(
      fault('xid', 'critical', { xid: 79 }),
      testPolicy(),
      { rebootsForFault: 0, remediationsInWindow: 3 },
      now,
    );
    expect([d.action, d.mode]).toEqual(['replace', 'approve']);
    expect(d.reason).toContain('a human decides');
  });

  it.each<[PolicyMode, PolicyMode]>([
    ['approve', 'approve'],
    ['off', 'off'],
    ['auto', 'auto'],
  ])('an LLM-sourced destructive action takes llmDestructiveMode=%s → %s', (llmMode, expected) => {
    const d = decide(
      fault('unknown', 'critical', { xid: 79, kind: 'xid', source: 'llm' }),
      testPolicy({ llmDestructiveMode: llmMode }),
      clean,
      now,
    );
    expect([d.action, d.mode]).toEqual(['replace', expected]);
  });

  it('a cached (LLM) category counts as LLM-sourced', () => {
    expect(
      decide(fault('xid', 'critical', { xid: 79, source: 'cache' }), testPolicy(), clean, now).mode,
    ).toBe('approve');
  });

  it('a preexisting (sticky, age unknown) fault asks a human instead of acting', () => {
    const d = decide(fault('xid', 'critical', { xid: 79, preexisting: true }), testPolicy(), clean, now);
    expect([d.action, d.mode]).toEqual(['replace', 'approve']);
  });

  it('an alert-only fault stays alert-only whatever the history', () => {
    const d = decide(
      fault('xid', 'warning', { xid: 31 }),
      testPolicy(),
      { rebootsForFault: 9, lastRebootAt: now, remediationsInWindow: 9 },
      now,
    );
    expect([d.action, d.mode]).toEqual(['none', 'off']);
  });
});

describe('decide: XID 154 from the dumps the rules read (issue 10)', () => {
  const ctx = {
    catalog: loadXidCatalog(),
    frCodes: loadDcgmFrCatalog(),
    policy: defaultClassificationPolicy,
  };
  const verdictOf = (file: string) =>
    classifySnapshot(
      parseDump(readFileSync(new URL(`../../eval/corpus/${file}`, import.meta.url), 'utf8'), { node: 'n1' })
        .snapshot,
      ctx,
    );

  it.each([
    ['exporter-xid154-only.prom', 'reboot', 'approve'],
    ['kernel-xid154-node-reboot.log', 'reboot', 'approve'],
    ['bundle-aws-sections-xid154-drain-p2p.txt', 'none', 'off'],
  ])('%s → %s / %s: never a silent verdict without the driver’s action', (file, action, mode) => {
    const v = verdictOf(file);
    const f = v.findings.find((x) => x.xid === 154);
    expect(f).toBeDefined();
    const d = decide(
      {
        category: f?.category ?? '',
        xid: 154,
        kind: f?.kind ?? 'xid',
        severity: f?.severity ?? 'info',
        source: 'rules',
        faultKey: f?.key ?? '',
        node: 'n1',
        recommendedAction: f?.action,
      },
      testPolicy(),
      clean,
      now,
    );
    expect([d.action, d.mode]).toEqual([action, mode]);
  });
});

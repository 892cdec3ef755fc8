import { describe, expect, it } from 'vitest';
import { verdictOf } from '../../domain/finding.js';
import { defaultClassificationPolicy } from '../../domain/policy.js';
import { categoryInfo } from './taxonomy.js';
import { type ValidationContext, validateAnswer } from './validate.js';

const policy = {
  ...defaultClassificationPolicy,
  xid: { 157: { action: 'replace' as const } },
  categories: [
    {
      name: 'FABRIC_MANAGER_DOWN',
      description: 'fm down',
      severity: 'critical' as const,
      action: 'reboot' as const,
    },
  ],
};

const ambiguousOnly: ValidationContext = {
  policy,
  evidenceXids: new Set([157]),
  gpuIndices: new Set([0, 1, 2, 3]),
  rulesVerdict: verdictOf('n', [
    {
      kind: 'xid',
      category: 'XID_WARNING_157',
      severity: 'warning',
      action: 'monitor',
      xid: 157,
      gpu: 2,
      evidence: [],
      explanation: '',
      source: 'rules',
      key: 'xid:157:gpu2',
      ambiguous: true,
    },
  ]),
};

const withCritical: ValidationContext = {
  ...ambiguousOnly,
  evidenceXids: new Set([79, 157]),
  rulesVerdict: verdictOf('n', [
    ...ambiguousOnly.rulesVerdict.findings,
    {
      kind: 'xid',
      category: 'XID_CRITICAL_79',
      severity: 'critical',
      action: 'replace',
      xid: 79,
      gpu: 1,
      evidence: [],
      explanation: '',
      source: 'rules',
      key: 'xid:79:gpu1',
    },
  ]),
};

const unsettledCritical: ValidationContext = {
  ...ambiguousOnly,
  rulesVerdict: verdictOf('n', [
    {
      kind: 'condition',
      category: 'GPU_HEALTH_ERROR',
      severity: 'critical',
      action: 'reboot',
      evidence: [],
      explanation: '',
      source: 'rules',
      key: 'condition:AcceleratedHardwareReady',
      ambiguous: true,
    },
  ]),
};

const good = {
  category: 'XID_CRITICAL_157',
  severity: 'critical',
  gpu: 2,
  xid: 157,
  confidence: 0.9,
  explanation: 'x',
};

describe('validateAnswer rejects', () => {
  it.each([
    ['not_json', 'I think this is XID 157, critical.', ambiguousOnly],
    ['not_object', [good], ambiguousOnly],
    ['not_object', undefined, ambiguousOnly],
    ['schema', { category: 'HEALTHY' }, ambiguousOnly],
    ['schema', { ...good, confidence: 'high' }, ambiguousOnly],
    ['schema', { ...good, note: 'extra key' }, ambiguousOnly],
    ['action_field', { ...good, action: 'replace' }, ambiguousOnly],
    ['action_field', { ...good, recommended_action: 'reboot' }, ambiguousOnly],
    ['unknown_category', { ...good, category: 'GPU_ON_FIRE' }, ambiguousOnly],
    ['unknown_category', { ...good, category: 'XID_CRITICAL_7.5', xid: null }, ambiguousOnly],
    ['xid_not_in_evidence', { ...good, category: 'XID_CRITICAL_79', xid: 79 }, ambiguousOnly],
    ['xid_not_in_evidence', { ...good, category: 'ECC_ERROR', xid: 48 }, ambiguousOnly],
    ['inconsistent', { ...good, xid: 79 }, withCritical],
    ['gpu_not_on_node', { ...good, gpu: 7 }, ambiguousOnly],
    ['low_confidence', { ...good, confidence: 0.2 }, ambiguousOnly],
    ['contradicts_critical', { ...good, category: 'HEALTHY', severity: 'healthy', xid: null }, withCritical],
    ['contradicts_critical', { ...good, category: 'XID_WARNING_157', severity: 'warning' }, withCritical],
    ['contradicts_critical', { ...good, category: 'HEALTHY', xid: null }, unsettledCritical],
  ])('%s: %j', (reason, input, ctx) => {
    const result = validateAnswer(input, ctx);
    expect(result).toMatchObject({ ok: false, reason });
  });
});

describe('validateAnswer accepts', () => {
  it('a valid tool answer, taking severity and action from the taxonomy, not the model', () => {
    const result = validateAnswer({ ...good, severity: 'info' }, ambiguousOnly);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.answer).toMatchObject({ category: 'XID_CRITICAL_157', gpu: 2, xid: 157, confidence: 0.9 });
    expect(result.answer.info).toMatchObject({ severity: 'critical', action: 'replace' });
  });

  it('an answer given as JSON text, with absent gpu/xid, cutting a long explanation', () => {
    const text = JSON.stringify({
      category: 'FABRIC_MANAGER_DOWN',
      severity: 'critical',
      confidence: 0.8,
      explanation: 'e'.repeat(900),
    });
    const result = validateAnswer(text, ambiguousOnly);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.answer.explanation).toHaveLength(300);
    expect(result.answer.gpu).toBeUndefined();
    expect(result.answer.info).toMatchObject({ action: 'reboot', custom: true });
  });
});

describe('categoryInfo', () => {
  it.each([
    ['XID_CRITICAL_79', 'critical', 'replace'],
    ['XID_CRITICAL_31', 'critical', 'reboot'],
    ['XID_CRITICAL_157', 'critical', 'replace'],
    ['XID_WARNING_13', 'warning', 'none'],
    ['ECC_ERROR', 'critical', 'reboot'],
    ['GPU_HEALTH_ERROR', 'critical', 'reboot'],
    ['GPU_HEALTH_WARNING', 'warning', 'none'],
    ['NVLINK_ERROR', 'warning', 'monitor'],
    ['GPU_MISSING', 'critical', 'reboot'],
    ['THERMAL_WARNING', 'warning', 'none'],
    ['HEALTHY', 'healthy', 'none'],
    ['FABRIC_MANAGER_DOWN', 'critical', 'reboot'],
  ])('%s → %s / %s', (name, severity, action) => {
    expect(categoryInfo(name, policy)).toMatchObject({ severity, action });
  });

  it.each([
    'XID_CRITICAL_',
    'XID_CRITICAL_x',
    'XID_FATAL_79',
    'healthy',
    'XID_CRITICAL_12345',
  ])('%s is not a category', (name) => {
    expect(categoryInfo(name, policy)).toBeUndefined();
  });
});

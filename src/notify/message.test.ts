import { describe, expect, it } from 'vitest';
import { event, incident, T0 } from '../../test/support/fixtures.js';
import { type ProgressDetails, ProgressSteps } from '../domain/events.js';
import { buildNotification, isNotifiedStep, notificationSubject, SUBJECT_MAX_CHARS } from './message.js';

describe('buildNotification', () => {
  it('carries the incident, the step and the AWS sample field names', () => {
    const m = buildNotification(event('detected', { actor: 'monitor' }), incident(), 'prod-gpu');
    expect(m).toMatchObject({
      schema: 'gpu-medic.notification/v1',
      incident_id: 'inc-1',
      cluster: 'prod-gpu',
      node: 'ip-10-0-1-23.ec2.internal',
      instance_id: 'i-0123456789abcdef0',
      instance_type: 'p5.48xlarge',
      node_group: 'gpu-p5',
      category: 'XID_CRITICAL_79',
      severity: 'critical',
      action: 'replace',
      state: 'detected',
      step: 'detected',
      source: 'rules',
      xid: 79,
      gpu: 3,
      first_seen: new Date(T0).toISOString(),
      last_seen: new Date(T0 + 60_000).toISOString(),
      at: new Date(T0 + 120_000).toISOString(),
      dry_run: false,
      actor: 'monitor',
      // the sample's event shape
      timestamp: new Date(T0 + 120_000).toISOString(),
      error_type: 'XID_CRITICAL_79',
      node_name: 'ip-10-0-1-23.ec2.internal',
      cluster_name: 'prod-gpu',
    });
    expect(m?.error_details).toEqual({
      explanation: 'GPU 3 has fallen off the bus (XID 79).',
      evidence: ['NVRM: Xid (PCI:0000:53:00): 79, GPU has fallen off the bus.'],
      xid: 79,
      gpu: 3,
      step: 'detected',
      state: 'detected',
    });
  });

  it('still builds a message from the event alone when the incident is unknown', () => {
    const m = buildNotification(event('failed', { dryRun: true }), undefined, 'c');
    expect(m).toMatchObject({ category: 'UNKNOWN', severity: 'unknown', instance_id: null, dry_run: true });
  });

  it('keeps details JSON-safe and bounds long explanations', () => {
    const cyclic: ProgressDetails['safety_limit'] & { self?: unknown } = {};
    cyclic.self = cyclic;
    const m = buildNotification(
      event({ step: 'safety_limit', details: cyclic }),
      incident({ explanation: 'x'.repeat(10_000) }),
      'c',
    );
    expect(m?.details).toEqual({ unserializable: true });
    expect(m?.explanation.length).toBeLessThanOrEqual(2000);
    expect(() => JSON.stringify(m)).not.toThrow();
  });

  const notified = new Set([
    'detected',
    'approval_needed',
    'cordoned',
    'reboot_issued',
    'replace_issued',
    'resolved',
    'escalated',
    'failed',
    'cancelled',
    'dismissed',
    'safety_limit',
  ]);
  it.each(ProgressSteps.map((s) => [s, notified.has(s)] as const))('step %s notified: %s', (step, yes) => {
    expect(isNotifiedStep(step)).toBe(yes);
    expect(buildNotification(event(step), incident(), 'c') !== undefined).toBe(yes);
  });
});

describe('notificationSubject', () => {
  it('reads like the brief', () => {
    expect(
      notificationSubject({
        severity: 'critical',
        category: 'XID_CRITICAL_79',
        node: 'ip-10-0-1-23',
        step: 'detected',
      }),
    ).toBe('[gpu-medic] critical XID_CRITICAL_79 on ip-10-0-1-23: detected');
  });

  it.each([
    ['a very long node name', 'n'.repeat(300)],
    ['newlines and tabs', 'node\n\tbad\r\nname'],
    ['non-ASCII', 'nœud-é-🔥-节点'],
  ])('is printable ASCII, one line, under 100 characters with %s', (_label, node) => {
    const s = notificationSubject({
      severity: 'warning',
      category: 'XID_WARNING_43',
      node,
      step: 'resolved',
    });
    expect(s.length).toBeLessThanOrEqual(SUBJECT_MAX_CHARS);
    expect(s).toMatch(/^[\x20-\x7e]+$/);
    expect(s.startsWith('[gpu-medic] warning XID_WARNING_43 on ')).toBe(true);
  });
});

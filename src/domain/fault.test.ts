import { describe, expect, it } from 'vitest';
import { faultKindOf, faultOfFinding, faultOfIncident } from './fault.js';
import type { Finding } from './finding.js';
import type { Incident } from './incident.js';

describe('the fault the policy reads', () => {
  it('takes the finding kind from the fault key prefix', () => {
    expect(faultKindOf('xid:79:gpu3')).toBe('xid');
    expect(faultKindOf('ecc_dbe:gpu0')).toBe('ecc_dbe');
    expect(faultKindOf('gpu_missing')).toBe('gpu_missing');
    expect(faultKindOf('manual:reboot:1')).toBe('unknown');
  });

  it('is the same from a finding and from the incident opened for it', () => {
    const finding: Finding = {
      kind: 'xid',
      category: 'XID_CRITICAL_79',
      severity: 'critical',
      action: 'reboot',
      gpu: 3,
      xid: 79,
      evidence: ['Xid 79'],
      explanation: 'fell off the bus',
      source: 'rules',
      key: 'xid:79:gpu3',
    };
    const incident: Incident = {
      id: 'inc-1',
      node: 'n-1',
      faultKey: finding.key,
      category: finding.category,
      severity: finding.severity,
      recommendedAction: finding.action,
      plannedAction: 'reboot',
      mode: 'auto',
      xid: 79,
      gpu: 3,
      explanation: finding.explanation,
      source: 'rules',
      evidence: finding.evidence,
      state: 'detected',
      preexisting: true,
      firstSeen: 1,
      lastSeen: 1,
      count: 1,
      updatedAt: 1,
    };
    expect(faultOfIncident(incident)).toEqual(faultOfFinding(finding, 'n-1', true));
  });
});

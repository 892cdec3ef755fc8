import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultClassificationPolicy, defaultEscalationPolicy } from '../domain/policy.js';
import { loadPolicy, PolicyError, parsePolicy } from './policy-file.js';

const dir = mkdtempSync(join(tmpdir(), 'gpu-medic-policy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const fullExample = `
classification:
  xid: { "13": { severity: warning, action: none }, "79": { action: replace } }
  sbeStormThreshold: 1000
  thermalWarningC: 87
  nvlinkErrorThreshold: 100
categories:
  - name: FABRIC_MANAGER_DOWN
    description: nvidia-fabricmanager is not running, NVLink/NVSwitch fabric unavailable
    severity: critical
    action: reboot
remediation:
  rules:
    - match: { xid: 79 }
      action: replace
      mode: auto
    - match: { category: GPU_HEALTH_ERROR }
      action: reboot
      mode: approve
  escalation: { returnWithinHours: 24, maxRebootsPerFault: 1, maxRemediationsPerNode: 3, windowDays: 7 }
  llmDestructiveMode: approve
`;

function problems(text: string): string[] {
  try {
    parsePolicy(text, 'policy.yaml');
  } catch (err) {
    if (err instanceof PolicyError) return err.problems;
    throw err;
  }
  throw new Error('expected a PolicyError');
}

describe('loadPolicy', () => {
  it('gives the domain defaults without a file', () => {
    const p = loadPolicy();
    expect(p.classification).toEqual(defaultClassificationPolicy);
    expect(p.remediation).toEqual({
      rules: [],
      escalation: defaultEscalationPolicy,
      llmDestructiveMode: 'approve',
    });
  });

  it('parses the documented full example', () => {
    const f = join(dir, 'full.yaml');
    writeFileSync(f, fullExample);
    const p = loadPolicy(f);
    expect(p.classification.xid).toEqual({
      13: { severity: 'warning', action: 'none' },
      79: { action: 'replace' },
    });
    expect(p.classification.categories).toEqual([
      {
        name: 'FABRIC_MANAGER_DOWN',
        description: 'nvidia-fabricmanager is not running, NVLink/NVSwitch fabric unavailable',
        severity: 'critical',
        action: 'reboot',
      },
    ]);
    expect(p.remediation.rules).toEqual([
      { match: { xid: 79 }, action: 'replace', mode: 'auto' },
      { match: { category: 'GPU_HEALTH_ERROR' }, action: 'reboot', mode: 'approve' },
    ]);
    expect(p.remediation.escalation).toEqual(defaultEscalationPolicy);
  });

  it('fills what a partial file leaves out with defaults', () => {
    const p = parsePolicy('remediation:\n  escalation: { windowDays: 3 }\n');
    expect(p.remediation.escalation).toEqual({ ...defaultEscalationPolicy, windowDays: 3 });
    expect(p.classification.sbeStormThreshold).toBe(1000);
    expect(parsePolicy('').classification).toEqual(defaultClassificationPolicy);
  });

  it('names the file when it is missing', () => {
    const f = join(dir, 'nope.yaml');
    expect(() => loadPolicy(f)).toThrow(`policy file ${f}: file not found`);
    expect(() => loadPolicy(dir)).toThrow(/is a directory/);
  });

  it.each([
    [
      'remediation:\n  rules:\n    - { match: { xid: 1 }, action: reboot, mode: auto }\n    - { match: { xid: 2 }, action: reboot, mode: auto }\n    - { match: { xid: 3 }, action: reboot, mode: sometimes }\n',
      'remediation.rules[2].mode: ',
    ],
    [
      'remediation:\n  rules:\n    - { match: {}, action: reboot, mode: auto }\n',
      'remediation.rules[0].match: needs at least one matcher',
    ],
    [
      'remediation:\n  rules:\n    - { match: { xid: 79 }, action: explode, mode: auto }\n',
      'remediation.rules[0].action: ',
    ],
    [
      'remediation:\n  rules:\n    - { match: { xid: 79 }, action: reboot, mdoe: auto }\n',
      'remediation.rules[0]: ',
    ],
    [
      'classification:\n  xid: { abc: { action: none } }\n',
      'classification.xid.abc: XID keys must be numbers',
    ],
    ['classification:\n  xid: { "13": { severity: awful } }\n', 'classification.xid.13.severity: '],
    ['classification:\n  thermalWarningC: hot\n', 'classification.thermalWarningC: '],
    [
      'categories:\n  - { name: fabric_down, description: x, severity: critical, action: reboot }\n',
      'categories[0].name: must match /^[A-Z][A-Z0-9_]*$/',
    ],
    [
      'categories:\n  - { name: GPU_MISSING, description: x, severity: critical, action: reboot }\n',
      'categories[0].name: collides with a built-in category',
    ],
    [
      'categories:\n  - { name: XID_CRITICAL_79, description: x, severity: critical, action: reboot }\n',
      'categories[0].name: collides with a built-in category',
    ],
    ['categories:\n  - { name: FOO, severity: critical, action: reboot }\n', 'categories[0].description: '],
    [
      'categories:\n  - { name: FOO, description: a, severity: critical, action: reboot }\n  - { name: FOO, description: b, severity: warning, action: none }\n',
      'categories: FOO is defined more than once',
    ],
    ['remediation: { llmDestructiveMode: yolo }\n', 'remediation.llmDestructiveMode: '],
    ['- just\n- a list\n', '(top level): '],
    ['classification: { thermalWarningC: 80\n', 'YAML syntax error at line'],
    ['a: 1\na: 2\n', 'YAML syntax error at line 2'],
  ])('refuses bad input with the YAML path: %#', (text, expected) => {
    const ps = problems(text);
    expect(ps.length).toBeGreaterThan(0);
    expect(ps.some((p) => p.startsWith(expected))).toBe(true);
  });

  it('the error message names the file', () => {
    expect(() =>
      parsePolicy('remediation: { llmDestructiveMode: yolo }', '/etc/gpu-medic/policy.yaml'),
    ).toThrow(/^policy file \/etc\/gpu-medic\/policy.yaml: remediation.llmDestructiveMode: /);
  });
});

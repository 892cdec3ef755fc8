import { describe, expect, it } from 'vitest';
import {
  defaultExclusionMs,
  type GpuCommand,
  isCommandError,
  isDestructive,
  isNodeName,
  needsConfirmation,
  normalizeCommandText,
  parseButtonValue,
  parseCommandButtonValue,
  parseDuration,
  parseGpuCommand,
  usage,
} from './parse.js';

const n = 'ip-10-0-1-2.us-west-2.compute.internal';
const m = 60_000;
const h = 60 * m;
const d = 24 * h;

describe('parseGpuCommand', () => {
  it.each<[string, GpuCommand]>([
    ['', { kind: 'help' }],
    ['   ', { kind: 'help' }],
    ['help', { kind: 'help' }],
    ['HELP', { kind: 'help' }],
    ['status', { kind: 'status' }],
    [`status ${n}`, { kind: 'status', node: n }],
    [`  status   ${n}  `, { kind: 'status', node: n }],
    [`exclude ${n}`, { kind: 'exclude', node: n, durationMs: defaultExclusionMs }],
    [`exclude ${n} 2h maintenance`, { kind: 'exclude', node: n, durationMs: 2 * h, reason: 'maintenance' }],
    [`exclude ${n} 30m`, { kind: 'exclude', node: n, durationMs: 30 * m }],
    [
      `exclude ${n} 1d vendor RMA ticket 4711`,
      { kind: 'exclude', node: n, durationMs: d, reason: 'vendor RMA ticket 4711' },
    ],
    [`exclude ${n} 1h30m`, { kind: 'exclude', node: n, durationMs: 90 * m }],
    [`exclude ${n} 1w`, { kind: 'exclude', node: n, durationMs: 7 * d }],
    [
      `exclude ${n} waiting for NVIDIA`,
      { kind: 'exclude', node: n, durationMs: defaultExclusionMs, reason: 'waiting for NVIDIA' },
    ],
    [`unexclude ${n}`, { kind: 'unexclude', node: n }],
    ['exclusions', { kind: 'exclusions' }],
    [`cordon ${n}`, { kind: 'cordon', node: n }],
    [`uncordon ${n} fixed by hand`, { kind: 'uncordon', node: n, reason: 'fixed by hand' }],
    [`reboot ${n} xid 48 again`, { kind: 'reboot', node: n, reason: 'xid 48 again' }],
    [`replace ${n}`, { kind: 'replace', node: n }],
    [`history ${n}`, { kind: 'history', node: n }],
    ['pause', { kind: 'pause' }],
    ['pause investigating fleet-wide XIDs', { kind: 'pause', reason: 'investigating fleet-wide XIDs' }],
    ['resume', { kind: 'resume' }],
    [
      'pause cluster:staging maintenance window',
      { kind: 'pause', cluster: 'staging', reason: 'maintenance window' },
    ],
    ['pause Cluster:prod_eu', { kind: 'pause', cluster: 'prod_eu' }],
    ['resume cluster:staging', { kind: 'resume', cluster: 'staging' }],
    ['exclusions cluster:staging', { kind: 'exclusions', cluster: 'staging' }],
    ['status cluster:prod-eu', { kind: 'status', cluster: 'prod-eu' }],
    ['report cluster:staging 7', { kind: 'report', days: 7, cluster: 'staging' }],
    ['report cluster:staging', { kind: 'report', days: 30, cluster: 'staging' }],
    // Only a first `cluster:` names the cluster; later it is part of the reason.
    ['pause see cluster:staging', { kind: 'pause', reason: 'see cluster:staging' }],
    // Slack turns host-like words into links when the command escapes links.
    [`status <http://${n}|${n}>`, { kind: 'status', node: n }],
    ['reboot <http://ip-10-0-1-2.ec2.internal>', { kind: 'reboot', node: 'ip-10-0-1-2.ec2.internal' }],
    [`cordon ${n} GPU &lt;3&gt; &amp; NVLink`, { kind: 'cordon', node: n, reason: 'GPU <3> & NVLink' }],
  ])('%j', (text, expected) => {
    expect(parseGpuCommand(text)).toEqual(expected);
  });

  it.each<[string, string | RegExp, string]>([
    ['rebot ip-1', "Unknown subcommand 'rebot'. Did you mean 'reboot'?", usage.reboot],
    ['stats', "Unknown subcommand 'stats'. Did you mean 'status'?", usage.status],
    ['exclusion', "Unknown subcommand 'exclusion'. Did you mean 'exclusions'?", usage.exclusions],
    ['excl node-1', "Unknown subcommand 'excl'. Did you mean 'exclude'?", usage.exclude],
    [
      'frobnicate',
      /Unknown subcommand 'frobnicate'\. Try one of: status, exclude/,
      usage.help.replace(usage.help, ''),
    ],
    ['reboot', "'reboot' needs a node name.", usage.reboot],
    ['exclude', "'exclude' needs a node name.", usage.exclude],
    ['history', "'history' needs a node name.", usage.history],
    ['unexclude', "'unexclude' needs a node name.", usage.unexclude],
    ['cordon IP-10-0-1-2', "Node names are lowercase: did you mean 'ip-10-0-1-2'?", usage.cordon],
    ['replace node_1', /'node_1' is not a valid node name/, usage.replace],
    ['status -bad-', /'-bad-' is not a valid node name/, usage.status],
    [
      `status ${'a'.repeat(254)}`,
      'Node name is 254 characters long; Kubernetes allows at most 253.',
      usage.status,
    ],
    ['status n1 n2', "'status' takes one node name (got 'n1 n2').", usage.status],
    ['history n1 extra', "'history' takes one node name.", usage.history],
    ['exclusions now', "'exclusions' takes only cluster:<name> (got 'now').", usage.exclusions],
    ['report cluster:prod 7 8', "'7' is not a number of days from 1 to 365.", usage.report],
    // A command about a node names its cluster in the node argument (`<cluster>/<node>`), never with cluster:.
    [
      'history cluster:staging',
      "'cluster:staging' is not a valid node name (lowercase letters, digits, '-' and '.', e.g. ip-10-0-1-2.ec2.internal).",
      usage.history,
    ],
    ['resume please', "'resume' takes only cluster:<name> (got 'please').", usage.resume],
    ['resume cluster:staging now', "'resume' takes only cluster:<name> (got 'now').", usage.resume],
    ['pause cluster:-bad reason', "'-bad' is not a cluster name (letters, digits, - and _).", usage.pause],
    ['pause cluster:', "'' is not a cluster name (letters, digits, - and _).", usage.pause],
    [
      'exclude n1 2x',
      "'2x' is not a duration: use minutes, hours, days or weeks like 30m, 2h, 1d, 1h30m.",
      usage.exclude,
    ],
    [
      'exclude n1 90s',
      "'90s' is not a duration: use minutes, hours, days or weeks like 30m, 2h, 1d, 1h30m.",
      usage.exclude,
    ],
    [
      'exclude n1 1.5h',
      "'1.5h' is not a duration: use minutes, hours, days or weeks like 30m, 2h, 1d, 1h30m.",
      usage.exclude,
    ],
    [
      'exclude n1 0h',
      "'0h' is not a duration: use minutes, hours, days or weeks like 30m, 2h, 1d, 1h30m.",
      usage.exclude,
    ],
    ['exclude n1 31d', "'31d' is longer than the 30d maximum exclusion.", usage.exclude],
    ['exclude n1 99999999999999999999d', /is not a duration|longer than the 30d/, usage.exclude],
  ])('%j is refused with a helpful error', (text, error, expectedUsage) => {
    const result = parseGpuCommand(text);
    if (!isCommandError(result)) throw new Error(`expected an error, got ${JSON.stringify(result)}`);
    if (typeof error === 'string') expect(result.error).toBe(error);
    else expect(result.error).toMatch(error);
    if (expectedUsage) expect(result.usage).toBe(expectedUsage);
    else expect(result.usage).toContain('/gpu status [node]');
  });

  it('never throws on hostile input', () => {
    for (const text of [
      '\u0000',
      '<<<>>>',
      '<|>',
      '`rm -rf`',
      'status <@U123>',
      'x'.repeat(100_000),
      '🧨 boom',
    ]) {
      expect(() => parseGpuCommand(text)).not.toThrow();
    }
    expect(parseGpuCommand(undefined as unknown as string)).toEqual({ kind: 'help' });
  });

  it('keeps reasons bounded', () => {
    const r = parseGpuCommand(`cordon ${n} ${'why '.repeat(1000)}`);
    expect(!isCommandError(r) && 'reason' in r && r.reason?.length).toBe(500);
  });
});

describe('parseDuration', () => {
  it.each<[string, number | undefined]>([
    ['30m', 30 * m],
    ['2h', 2 * h],
    ['1d', d],
    ['1h30m', 90 * m],
    ['2d12h', 60 * h],
    ['1W', 7 * d],
    ['', undefined],
    ['h', undefined],
    ['30', undefined],
    ['30m2h', undefined],
    ['-1h', undefined],
    ['1.5h', undefined],
  ])('%j → %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });
});

describe('isNodeName', () => {
  it.each<[string, boolean]>([
    ['ip-10-0-1-2.us-west-2.compute.internal', true],
    ['node1', true],
    ['a', true],
    ['Node1', false],
    ['-node', false],
    ['node-', false],
    ['node..a', false],
    ['node_a', false],
    ['', false],
    ['a'.repeat(63) + '.' + 'b'.repeat(63), true],
    [`${'a'.repeat(63)}.`.repeat(4).slice(0, 254), false],
  ])('%j → %s', (name, ok) => {
    expect(isNodeName(name)).toBe(ok);
  });
});

describe('normalizeCommandText', () => {
  it('unwraps Slack links and entities', () => {
    expect(normalizeCommandText('status <http://a.b|a.b>  &amp;')).toBe('status a.b &');
    expect(normalizeCommandText('<mailto:x@y.z|x@y.z>')).toBe('x@y.z');
  });
});

describe('isDestructive / needsConfirmation', () => {
  it.each<[string, boolean, boolean]>([
    ['status', false, false],
    [`status ${n}`, false, false],
    ['exclusions', false, false],
    [`history ${n}`, false, false],
    ['help', false, false],
    [`exclude ${n}`, true, false],
    [`unexclude ${n}`, true, false],
    [`cordon ${n}`, true, true],
    [`uncordon ${n}`, true, true],
    [`reboot ${n}`, true, true],
    [`replace ${n}`, true, true],
    ['pause', true, false],
    ['resume', true, false],
  ])('%j destructive=%s confirm=%s', (text, destructive, confirm) => {
    const cmd = parseGpuCommand(text);
    if (isCommandError(cmd)) throw new Error(cmd.error);
    expect(isDestructive(cmd)).toBe(destructive);
    expect(needsConfirmation(cmd)).toBe(confirm);
  });
});

describe('parseButtonValue', () => {
  it('reads the alert button value', () => {
    expect(parseButtonValue(JSON.stringify({ i: 'inc-1', n }))).toEqual({ incidentId: 'inc-1', node: n });
  });

  it.each<[string, unknown, RegExp]>([
    ['missing', undefined, /missing/],
    ['empty', '', /missing/],
    ['a number', 42, /missing/],
    ['not JSON', '{i:1', /not JSON/],
    ['JSON null', 'null', /invalid button value/],
    ['array', '[1,2]', /invalid button value/],
    ['no node', '{"i":"inc-1"}', /invalid button value: n:/],
    ['bad node', '{"i":"inc-1","n":"Bad Node"}', /not a valid Kubernetes node name/],
    ['empty id', '{"i":"","n":"n1"}', /invalid button value: i:/],
    ['id as number', '{"i":7,"n":"n1"}', /invalid button value: i:/],
    ['too long', JSON.stringify({ i: 'x'.repeat(3000), n: 'n1' }), /too long/],
    ['proto pollution', '{"__proto__":{"x":1},"i":"a","n":"n1"}', /^$/],
  ])('refuses %s', (_name, value, error) => {
    const result = parseButtonValue(value);
    if (error.source === '^$') {
      expect(result).toEqual({ incidentId: 'a', node: 'n1' });
      return;
    }
    expect(result).toHaveProperty('error');
    expect((result as { error: string }).error).toMatch(error);
  });
});

describe('/gpu reset', () => {
  it('takes a node, an optional GPU index and a reason', () => {
    expect(parseGpuCommand('reset ip-10-0-1-5 3 xid 119 again')).toEqual({
      kind: 'reset',
      node: 'ip-10-0-1-5',
      gpu: 3,
      reason: 'xid 119 again',
    });
    expect(parseGpuCommand('reset ip-10-0-1-5')).toEqual({ kind: 'reset', node: 'ip-10-0-1-5' });
    expect(parseGpuCommand('reset ip-10-0-1-5 flaky')).toEqual({
      kind: 'reset',
      node: 'ip-10-0-1-5',
      reason: 'flaky',
    });
  });

  it('the confirmation button carries the GPU; other actions never get one', () => {
    expect(parseCommandButtonValue(JSON.stringify({ k: 'reset', n: 'ip-10-0-1-5', g: 3 }))).toEqual({
      kind: 'reset',
      node: 'ip-10-0-1-5',
      gpu: 3,
    });
    expect(parseCommandButtonValue(JSON.stringify({ k: 'reboot', n: 'ip-10-0-1-5', g: 3 }))).toEqual({
      kind: 'reboot',
      node: 'ip-10-0-1-5',
    });
    expect(parseCommandButtonValue(JSON.stringify({ k: 'reset', n: 'ip-10-0-1-5', g: -1 }))).toHaveProperty(
      'error',
    );
  });
});

describe('node arguments in a fleet: <cluster>/<node>', () => {
  it('reads the cluster of every node argument, and leaves a bare node without one', () => {
    expect(parseGpuCommand('reboot prod/ip-10-0-1-2.ec2.internal disk')).toEqual({
      kind: 'reboot',
      node: 'ip-10-0-1-2.ec2.internal',
      cluster: 'prod',
      reason: 'disk',
    });
    expect(parseGpuCommand('status Prod_EU/gpu-1')).toEqual({
      kind: 'status',
      node: 'gpu-1',
      cluster: 'Prod_EU',
    });
    expect(parseGpuCommand('exclude staging/gpu-1 2h')).toMatchObject({ cluster: 'staging', node: 'gpu-1' });
    expect(parseGpuCommand('diag staging/gpu-1 2')).toEqual({
      kind: 'diag',
      node: 'gpu-1',
      cluster: 'staging',
      level: 2,
    });
    expect(parseGpuCommand('history gpu-1')).toEqual({ kind: 'history', node: 'gpu-1' });
  });

  it('takes `/gpu status <cluster>` for a name that cannot be a node; a node-like name is left to the handler', () => {
    expect(parseGpuCommand('status Prod_EU')).toEqual({ kind: 'status', cluster: 'Prod_EU' });
    expect(parseGpuCommand('status staging')).toEqual({ kind: 'status', node: 'staging' });
  });

  it('refuses a bad cluster or node part', () => {
    expect(parseGpuCommand('reboot pr!od/gpu-1')).toHaveProperty(
      'error',
      expect.stringContaining('not a cluster name'),
    );
    expect(parseGpuCommand('reboot prod/GPU-1')).toHaveProperty(
      'error',
      expect.stringContaining('lowercase'),
    );
    expect(parseGpuCommand('reboot /gpu-1')).toHaveProperty(
      'error',
      expect.stringContaining('not a cluster name'),
    );
  });

  it('buttons carry the cluster; a value without one still parses', () => {
    expect(parseButtonValue('{"i":"inc-1","n":"gpu-1","c":"prod"}')).toEqual({
      incidentId: 'inc-1',
      node: 'gpu-1',
      cluster: 'prod',
    });
    expect(parseButtonValue('{"i":"inc-1","n":"gpu-1"}')).toEqual({ incidentId: 'inc-1', node: 'gpu-1' });
    expect(parseButtonValue('{"i":"inc-1","n":"gpu-1","c":"a/b"}')).toHaveProperty('error');
    expect(parseCommandButtonValue('{"k":"reboot","n":"gpu-1","c":"staging"}')).toEqual({
      kind: 'reboot',
      node: 'gpu-1',
      cluster: 'staging',
    });
  });
});

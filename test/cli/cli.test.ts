/**
 * The `gpu-medic` command as a user runs it: the real bin, a child process, exit codes and output.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../../src/sim/index.js';

const bin = join(import.meta.dirname, '../../bin/gpu-medic.js');
const fixtures = join(import.meta.dirname, '../fixtures');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function gpuMedic(
  args: string[],
  opts: { env?: Record<string, string>; input?: string; bin?: string } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [opts.bin ?? bin, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

describe('gpu-medic --help and config', () => {
  it('lists every command', async () => {
    const r = await gpuMedic(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['run', 'demo', 'scan', 'classify', 'config', 'cordon', 'exclude', 'bench', 'eval']) {
      expect(r.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
    }
  });

  it('rejects an unknown command with exit 2', async () => {
    const r = await gpuMedic(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
  });

  it('prints the effective configuration with secrets redacted', async () => {
    const r = await gpuMedic(['config'], {
      env: {
        SLACK_BOT_TOKEN: 'xoxb-1111-2222-supersecretvalue',
        SLACK_SIGNING_SECRET: '8f742231b10e8888abcd99aa1bbb85a5',
        SLACK_CHANNEL: '#gpu',
        MONITOR_INTERVAL: '30',
      },
    });
    expect(r.code).toBe(0);
    const config = JSON.parse(r.stdout);
    expect(config.monitor.intervalSeconds).toBe(30);
    expect(r.stdout).not.toContain('supersecretvalue');
    expect(r.stdout).not.toContain('8f742231b10e8888abcd99aa1bbb85a5');
  });

  it('names every bad variable and exits 2', async () => {
    const r = await gpuMedic(['config'], { env: { MONITOR_INTERVAL: 'abc', DRY_RUN: 'maybe' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('MONITOR_INTERVAL');
    expect(r.stderr).toContain('DRY_RUN');
  });
});

describe('gpu-medic classify', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'gpu-medic-classify-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('classifies a kernel log with XID 79 as critical, one JSON object per input', async () => {
    const log = join(dir, 'xid79.log');
    writeFileSync(
      log,
      "NVRM: Xid (PCI:0000:91:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.\n",
    );
    const healthy = join(fixtures, 'dcgm-sample-eks-h100-8gpu.prom');
    const r = await gpuMedic(['classify', '--json', log, healthy]);
    expect(r.code).toBe(0);
    const [a, b] = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(a).toMatchObject({
      input: log,
      category: 'XID_CRITICAL_79',
      severity: 'critical',
      xid: 79,
      source: 'rules',
    });
    expect(Array.isArray(a.findings)).toBe(true);
    expect(b).toMatchObject({ input: healthy, category: 'HEALTHY', severity: 'healthy' });
  });

  it('reads standard input', async () => {
    const r = await gpuMedic(['classify', '--json', '-'], {
      input: 'NVRM: Xid (PCI:0000:b5:00): 13, pid=1, name=python, Graphics SM Warp Exception\n',
    });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ category: 'XID_WARNING_13', severity: 'warning' });
  });

  it('reports unreadable input clearly and exits 1, still classifying the rest', async () => {
    const garbage = join(dir, 'garbage.bin');
    writeFileSync(garbage, Buffer.from([0, 1, 2, 3, 255, 254, 0, 0]));
    const ok = join(dir, 'ok.log');
    writeFileSync(ok, 'NVRM: Xid (PCI:0000:07:00): 48, pid=1, name=x, An uncorrectable double bit error\n');
    const r = await gpuMedic(['classify', '--json', garbage, join(dir, 'missing.txt'), ok]);
    expect(r.code).not.toBe(0);
    expect(`${r.stdout}${r.stderr}`).toMatch(/garbage\.bin|missing\.txt/);
  });
});

describe('gpu-medic scan', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ nodes: 5, slack: false });
    sim.cluster.injectXid(
      sim.cluster.listNodes().find((n) => n.status?.capacity?.['nvidia.com/gpu'])!.metadata!.name!,
      1,
      79,
    );
  });
  afterAll(async () => sim?.close());

  it('prints every GPU node’s verdict and changes nothing', async () => {
    const before = sim.mutatingRequests().length;
    const r = await gpuMedic(['scan', '--json'], { env: { ...sim.env, CLASSIFIER: 'rules' } });
    expect(r.code, r.stderr).toBe(0);
    const rows = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows).toHaveLength(5);
    expect(rows.filter((row) => row.category === 'XID_CRITICAL_79')).toHaveLength(1);
    expect(rows.filter((row) => row.category === 'HEALTHY')).toHaveLength(4);
    // The simulated exporters run the stock counters: the coverage warning goes to stderr, not into the rows.
    expect(r.stderr).toContain('signal families missing');
    expect(sim.mutatingRequests().length).toBe(before);
  });
});

describe('gpu-medic cordon|reboot|exclude|unexclude (manual actions)', () => {
  let sim: Simulator;
  let dir: string;
  let env: Record<string, string>;
  let node: string;
  beforeAll(async () => {
    sim = await startSimulator({ nodes: 3, slack: false });
    dir = mkdtempSync(join(tmpdir(), 'gpu-medic-manual-'));
    env = { ...sim.env, DB_PATH: join(dir, 'gpu-medic.db'), LOG_LEVEL: 'silent' };
    node = sim.cluster.listNodes().find((n) => n.status?.capacity?.['nvidia.com/gpu'])!.metadata!.name!;
  });
  afterAll(async () => {
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('DRY_RUN=true says what it would do and changes nothing', async () => {
    const r = await gpuMedic(['cordon', node, '--reason', 'try'], { env: { ...env, DRY_RUN: 'true' } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('DRY RUN — would cordon');
    expect(sim.mutatingRequests()).toEqual([]);
    expect(sim.cluster.getNode(node)?.spec?.unschedulable).not.toBe(true);
  });

  it('cordons through the same services, and refuses an excluded or unknown node', async () => {
    const cordon = await gpuMedic(['cordon', node, '--reason', 'maintenance'], { env });
    expect(cordon.code, cordon.stderr).toBe(0);
    expect(sim.cluster.getNode(node)?.spec?.unschedulable).toBe(true);

    expect(
      (await gpuMedic(['exclude', node, '--for', '2h', '--reason', 'vendor ticket'], { env })).code,
    ).toBe(0);
    const before = sim.mutatingRequests().length;
    const reboot = await gpuMedic(['reboot', node], { env });
    expect(reboot.code).toBe(1);
    expect(reboot.stdout).toContain('excluded');
    expect(sim.mutatingRequests().length).toBe(before);
    expect((await gpuMedic(['unexclude', node], { env })).code).toBe(0);

    const unknown = await gpuMedic(['uncordon', 'no-such-node'], { env });
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toContain('does not exist');
  }, 120_000); // five CLI processes, each loading the whole app: slow on a loaded 2-core machine
});

describe('gpu-medic in the production image (no simulator, benchmarks or evaluation)', () => {
  let dir: string;
  let imageBin: string;
  const repo = join(import.meta.dirname, '../..');
  beforeAll(() => {
    // The image's layout: bin/gpu-medic.js runs dist/cli.js when src/ is absent; the commands that need
    // src/sim, src/bench or src/eval are not built. Only the CLI and its error type are compiled here: every
    // command is imported lazily, so nothing else is loaded before one is chosen.
    dir = mkdtempSync(join(tmpdir(), 'gpu-medic-image-'));
    mkdirSync(join(dir, 'bin'));
    mkdirSync(join(dir, 'dist/commands'), { recursive: true });
    copyFileSync(join(repo, 'bin/gpu-medic.js'), join(dir, 'bin/gpu-medic.js'));
    copyFileSync(join(repo, 'package.json'), join(dir, 'package.json'));
    for (const file of ['cli', 'commands/cli-error']) {
      const source = readFileSync(join(repo, `src/${file}.ts`), 'utf8');
      const { outputText } = ts.transpileModule(source, {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      });
      writeFileSync(join(dir, `dist/${file}.js`), outputText);
    }
    imageBin = join(dir, 'bin/gpu-medic.js');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('still lists every command and prints the version', async () => {
    const help = await gpuMedic(['--help'], { bin: imageBin });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^ {2}demo\b/m);
    expect((await gpuMedic(['--version'], { bin: imageBin })).code).toBe(0);
  });

  it('says demo, bench and eval run from a source checkout only, and exits 2', async () => {
    for (const command of ['demo', 'bench', 'eval']) {
      const r = await gpuMedic([command], { bin: imageBin });
      expect(r.code, command).toBe(2);
      expect(r.stderr, command).toContain(`'${command}' is only available from a source checkout`);
    }
  });

  it('reports a production command whose module is missing as the fault it is, not as source-only', async () => {
    const r = await gpuMedic(['scan'], { bin: imageBin });
    expect(r.code).toBe(1);
    expect(r.stderr).not.toContain('source checkout');
    expect(r.stderr).toContain('scan.js');
  });
});

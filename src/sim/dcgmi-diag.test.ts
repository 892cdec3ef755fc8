import { readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../test/support/wait.js';
import { parseDcgmiDiag } from '../collect/parse/dcgmi-diag.js';
import { execInPod } from '../k8s/exec.js';
import { SimCluster } from './cluster.js';
import { DEFAULT_DIAG_DURATION_MS, styled } from './dcgmi-diag.js';
import { attachExec, type SimExec } from './exec-server.js';
import { type SimK8sServer, startSimK8s } from './k8s-server.js';
import { kubeconfigFor } from './kubeconfig.js';
import { ManualClock } from './sim-clock.js';

let clock: ManualClock;
let cluster: SimCluster;
let sim: SimK8sServer;
let simExec: SimExec;
let kc: KubeConfig;
let node: string;
let pod: { namespace: string; pod: string };

beforeEach(async () => {
  clock = new ManualClock();
  // The stock, shell-less EKS agent image: argv exec only.
  cluster = new SimCluster({
    nodes: 1,
    gpusPerNode: 4,
    instanceType: 'g6e.12xlarge',
    dcgmServer: true,
    clock,
  });
  sim = await startSimK8s(cluster);
  simExec = attachExec(sim, cluster);
  kc = new KubeConfig();
  kc.loadFromString(kubeconfigFor(sim.url));
  node =
    cluster.listNodes().find((n) => n.metadata.labels?.['nvidia.com/gpu.present'] === 'true')?.metadata
      .name ?? '';
  const p = cluster.dcgmServerPod(node);
  pod = { namespace: p?.metadata.namespace ?? '', pod: p?.metadata.name ?? '' };
});

afterEach(async () => {
  simExec.close();
  await sim.close();
  cluster.close();
  sim.log.assertNoUnexpected();
});

/** Runs `dcgmi diag` by argv and moves the simulated clock through the level's run. */
async function diag(level: string, ...flags: string[]) {
  const before = cluster.diag.runs.length;
  const out = execInPod(kc, { ...pod, command: ['dcgmi', 'diag', '-r', level, ...flags], timeoutMs: 10_000 });
  if (/^[123]$/.test(level) && flags.includes('-j')) {
    await waitFor('the diagnostic to start', () => cluster.diag.runs.length > before);
    clock.advance(DEFAULT_DIAG_DURATION_MS[Number(level) as 1 | 2 | 3]);
  }
  return out;
}

describe('dcgmi diag -r <level> -j in the simulated DCGM pods', () => {
  it('prints DCGM’s JSON: a pass of every GPU at level 1, exit 0, readable by the parser', async () => {
    const out = await diag('1', '-j');
    expect(out.exitCode).toBe(0);
    const doc = JSON.parse(out.stdout);
    expect(Object.keys(doc).sort()).toEqual(['DCGM Diagnostic', 'entity_groups', 'metadata']);
    expect(doc['DCGM Diagnostic'].test_categories).toEqual([
      expect.objectContaining({
        category: 'Deployment',
        tests: [expect.objectContaining({ name: 'software' })],
      }),
    ]);
    const parsed = parseDcgmiDiag(out.stdout, 1);
    expect(parsed.kind).toBe('report');
    if (parsed.kind === 'report') {
      expect(parsed.report.results.map((r) => [r.gpu, r.status])).toEqual([
        [0, 'pass'],
        [1, 'pass'],
        [2, 'pass'],
        [3, 'pass'],
      ]);
    }
  });

  it('has the fixture’s shape and style (the keys of every level, jsoncpp’s indentation)', async () => {
    const fixture = JSON.parse(
      readFileSync(new URL('../../test/fixtures/dcgmi-diag-r2-fail.json', import.meta.url), 'utf8'),
    );
    cluster.injectDiag(node, { test: 'memory', gpu: 3, status: 'fail' });
    const out = await diag('2', '-j');
    const doc = JSON.parse(out.stdout);
    const keysOf = (v: unknown): unknown =>
      Array.isArray(v)
        ? keysOf(v[0])
        : v && typeof v === 'object'
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, keysOf(x)]))
          : typeof v;
    const failing = (d: typeof doc) => d['DCGM Diagnostic'].test_categories[2].tests[0].results[3];
    expect(keysOf(failing(doc))).toEqual(keysOf(failing(fixture)));
    expect(keysOf(doc.entity_groups)).toEqual(keysOf(fixture.entity_groups));
    expect(doc['DCGM Diagnostic'].test_categories.map((c: { category: string }) => c.category)).toEqual([
      'Deployment',
      'Integration',
      'Hardware',
    ]);
    expect(out.stdout).toBe(`${styled(doc)}\n`);
    expect(out.stdout).toContain('\n   "DCGM Diagnostic" : {');
  });

  it('injected per test and GPU: a failure (ISOLATE: exit 205), a warning printed as Fail with MONITOR severity, a skip', async () => {
    cluster.injectDiag(node, { test: 'memory', gpu: 1, status: 'fail' });
    cluster.injectDiag(node, { test: 'pcie', gpu: 2, status: 'warn' });
    cluster.injectDiag(node, { test: 'memory', gpu: 0, status: 'skip', message: 'GPU busy' });
    const out = await diag('2', '-j');
    expect(out.exitCode).toBe(205);
    const parsed = parseDcgmiDiag(out.stdout, 2);
    if (parsed.kind !== 'report') throw new Error(parsed.message);
    const of = (test: string, gpu: number) =>
      parsed.report.results.find((r) => r.test === test && r.gpu === gpu);
    expect(of('memory', 1)).toEqual({
      test: 'memory',
      gpu: 1,
      status: 'fail',
      info: 'Found 4 faulty memory elements on GPU 1',
    });
    expect(of('pcie', 2)?.status).toBe('warn');
    expect(out.stdout).toMatch(
      /"error_severity" : 1,\s+"warning" : "Detected clocks event due to thermal violation in GPU 2\."/,
    );
    expect(of('memory', 0)).toEqual({ test: 'memory', gpu: 0, status: 'skip', info: 'GPU busy' });
    expect(of('memory', 3)?.status).toBe('pass');
  });

  it('a warning alone exits 226 (DCGM_ST_NVVS_ERROR); an injection for a test the level does not run is not applied', async () => {
    cluster.injectDiag(node, { test: 'pcie', status: 'warn' });
    cluster.injectDiag(node, { test: 'targeted_power', gpu: 0, status: 'fail' });
    const one = await diag('1', '-j');
    expect(one.exitCode).toBe(0);
    const two = await diag('2', '-j');
    expect(two.exitCode).toBe(226);
  });

  it('`times` limits an injection to that many runs', async () => {
    cluster.injectDiag(node, { test: 'software', gpu: 0, status: 'fail', times: 1 });
    expect((await diag('1', '-j')).exitCode).not.toBe(0);
    expect((await diag('1', '-j')).exitCode).toBe(0);
  });

  it('level 3 runs the long tests and takes longer in simulated time than levels 1 and 2', async () => {
    expect(DEFAULT_DIAG_DURATION_MS[3]).toBeGreaterThan(DEFAULT_DIAG_DURATION_MS[2]);
    expect(DEFAULT_DIAG_DURATION_MS[2]).toBeGreaterThan(DEFAULT_DIAG_DURATION_MS[1]);
    let finished = false;
    const out = execInPod(kc, {
      ...pod,
      command: ['dcgmi', 'diag', '-r', '3', '-j'],
      timeoutMs: 10_000,
    }).then((o) => {
      finished = true;
      return o;
    });
    await waitFor('the diagnostic to start', () => cluster.diag.runs.length === 1);
    clock.advance(DEFAULT_DIAG_DURATION_MS[2]);
    // A level-2 run would be over by now; level 3 is still running (the exec has not answered).
    expect(cluster.diag.runs[0]?.level).toBe(3);
    await Promise.resolve();
    expect(finished).toBe(false);
    clock.advance(DEFAULT_DIAG_DURATION_MS[3] - DEFAULT_DIAG_DURATION_MS[2]);
    const done = await out;
    const parsed = parseDcgmiDiag(done.stdout, 3);
    if (parsed.kind !== 'report') throw new Error(parsed.message);
    expect([...new Set(parsed.report.results.map((r) => r.test))]).toEqual([
      'software',
      'pcie',
      'memory',
      'diagnostic',
      'targeted_stress',
      'memory_bandwidth',
      'targeted_power',
    ]);
  });

  it('a refused run prints runtime_error', async () => {
    cluster.refuseDiag(node, { message: 'Error: The GPU is in use by another process', times: 1 });
    const out = await diag('1', '-j');
    expect(out.exitCode).not.toBe(0);
    expect(parseDcgmiDiag(out.stdout, 1)).toEqual({
      kind: 'runtime_error',
      message: 'Error: The GPU is in use by another process',
    });
  });

  it('a bad level or no -j is a usage error; a shell line never runs (the image has no sh)', async () => {
    expect(await diag('5', '-j')).toMatchObject({
      exitCode: 255,
      stderr: expect.stringContaining('Invalid test or level'),
    });
    expect(await diag('1')).toMatchObject({ exitCode: 255 });
    await expect(
      execInPod(kc, { ...pod, command: ['sh', '-c', 'dcgmi diag -r 1 -j'], timeoutMs: 5_000 }),
    ).rejects.toMatchObject({ code: 'missing-command' });
    expect(cluster.diag.runs).toEqual([]);
  });

  it('clearFaults clears the injected diagnostic results', async () => {
    cluster.injectDiag(node, { test: 'software', status: 'fail' });
    cluster.clearFaults(node);
    expect((await diag('1', '-j')).exitCode).toBe(0);
  });
});

import { existsSync } from 'node:fs';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SimulatorProcess, startSimulatorProcess } from './process.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw e;
  }
}

describe('startSimulatorProcess', () => {
  let sim: SimulatorProcess;

  beforeAll(async () => {
    sim = await startSimulatorProcess({ nodes: 2, slack: false });
  });

  afterAll(async () => {
    await sim.close();
  });

  it('runs in another process and reports its env', () => {
    expect(sim.pid).not.toBe(process.pid);
    expect(alive(sim.pid)).toBe(true);
    expect(sim.env.KUBECONFIG && existsSync(sim.env.KUBECONFIG)).toBe(true);
    expect(sim.env.AWS_ENDPOINT_URL).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(sim.controlUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('serves the cluster through the kubeconfig and counts the requests', async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(sim.env.KUBECONFIG ?? '');
    const before = await sim.requestCount();
    const nodes = await kc.makeApiClient(CoreV1Api).listNode();
    expect(nodes.items).toHaveLength(3);
    expect(await sim.requestCount()).toBe(before + 1);
    expect((await sim.requestCounts()).unexpected).toBe(0);
  });

  it('takes a fault through the control API and shows it in its state', async () => {
    const state = await sim.state();
    const node = state.nodes.find((n) => n.gpuNode)?.name ?? '';
    await sim.inject({ kind: 'xid', node, gpu: 3, xid: 79 });
    expect((await sim.nodeState(node)).faults).toEqual([{ gpu: 3, xid: 79 }]);
    await sim.clear(node);
    expect((await sim.nodeState(node)).faults).toEqual([]);
  });

  it('rejects a bad fault with the control API message', async () => {
    await expect(sim.inject({ kind: 'xid', node: 'nope', gpu: 0, xid: 79 })).rejects.toThrow(
      /404 unknown node nope/,
    );
  });

  it("reports the child's CPU usage and RSS", async () => {
    const cpu = await sim.cpuUsage();
    expect(cpu.user).toBeGreaterThan(0);
    expect(cpu.system).toBeGreaterThanOrEqual(0);
    expect(await sim.rss()).toBeGreaterThan(0);
  });
});

describe('closing', () => {
  it('leaves no process and no kubeconfig behind', async () => {
    const sim = await startSimulatorProcess({ nodes: 1, slack: false, workloads: false });
    const kubeconfig = sim.env.KUBECONFIG ?? '';
    expect(alive(sim.pid)).toBe(true);
    await sim.close();
    await sim.close();
    expect(alive(sim.pid)).toBe(false);
    expect(existsSync(kubeconfig)).toBe(false);
    await expect(sim.cpuUsage()).rejects.toThrow(/gone/);
  });

  it('fails to start with a clear error on bad options', async () => {
    await expect(startSimulatorProcess({ nodes: -1 })).rejects.toThrow(/bad simulator options: nodes/);
  });
});

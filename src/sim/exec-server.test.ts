import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { SimCluster } from './cluster.js';
import { attachExec, type SimExec } from './exec-server.js';
import { type SimK8sServer, startSimK8s } from './k8s-server.js';
import { ManualClock } from './sim-clock.js';

/** The channel protocol seen from a raw WebSocket client, for the subprotocols client-node does not pick. */
let cluster: SimCluster;
let sim: SimK8sServer;
let simExec: SimExec;
let pod: string;

beforeEach(async () => {
  cluster = new SimCluster({ nodes: 1, dcgmServer: true });
  sim = await startSimK8s(cluster);
  simExec = attachExec(sim, cluster);
  pod =
    cluster
      .listPods({ namespace: 'kube-system' })
      .find((p) => p.metadata.labels?.['k8s-app'] === 'dcgm-server')?.metadata.name ?? '';
});

afterEach(async () => {
  simExec.close();
  await sim.close();
  cluster.close();
  sim.log.assertNoUnexpected();
});

interface Frames {
  protocol: string;
  frames: { channel: number; text: string }[];
  closeCode: number;
}

function execRaw(query: string, protocols: string[]): Promise<Frames | { status: number }> {
  const url = `${sim.url.replace('http', 'ws')}/api/v1/namespaces/kube-system/pods/${pod}/exec?${query}`;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    const frames: Frames['frames'] = [];
    ws.on('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      res.resume();
      ws.terminate();
    });
    ws.on('message', (data: Buffer) =>
      frames.push({ channel: data[0] ?? -1, text: data.subarray(1).toString() }),
    );
    ws.on('close', (closeCode) => resolve({ protocol: ws.protocol, frames, closeCode }));
    ws.on('error', reject);
  });
}

const q = (...command: string[]) =>
  `${command.map((c) => `command=${encodeURIComponent(c)}`).join('&')}&stdout=true&stderr=true`;

describe('exec channel protocol', () => {
  it('v4: an empty stdout frame first, output, then the Status JSON with the exit code, then close', async () => {
    const r = (await execRaw(q('frobnicate'), ['v4.channel.k8s.io'])) as Frames;
    expect(r.protocol).toBe('v4.channel.k8s.io');
    expect(r.closeCode).toBe(1000);
    expect(r.frames[0]).toEqual({ channel: 1, text: '' });
    expect(r.frames[1]).toEqual({ channel: 2, text: 'frobnicate: command not found\n' });
    const last = r.frames.at(-1);
    expect(last?.channel).toBe(3);
    expect(JSON.parse(last?.text ?? '')).toEqual({
      metadata: {},
      status: 'Failure',
      reason: 'NonZeroExitCode',
      message:
        'command terminated with non-zero exit code: error executing command [frobnicate], exit code 127',
      details: { causes: [{ reason: 'ExitCode', message: '127' }] },
    });
  });

  it('v4 success ends with {"metadata":{},"status":"Success"}', async () => {
    const r = (await execRaw(q('dcgmi', 'discovery', '-l'), ['v4.channel.k8s.io'])) as Frames;
    expect(
      r.frames
        .filter((f) => f.channel === 1)
        .map((f) => f.text)
        .join(''),
    ).toMatch(/^8 GPUs found\./);
    expect(r.frames.at(-1)).toEqual({ channel: 3, text: '{"metadata":{},"status":"Success"}' });
  });

  it('channel.k8s.io (v1): channel 3 carries error text, and only on failure', async () => {
    const ok = (await execRaw(q('dcgmi', 'health', '-c'), ['channel.k8s.io'])) as Frames;
    expect(ok.protocol).toBe('channel.k8s.io');
    expect(ok.frames.some((f) => f.channel === 3)).toBe(false);
    const bad = (await execRaw(q('nope'), ['channel.k8s.io'])) as Frames;
    expect(bad.frames.at(-1)).toEqual({
      channel: 3,
      text: 'command terminated with non-zero exit code: error executing command [nope], exit code 127',
    });
  });

  it('the first protocol the client offers that the server knows wins', async () => {
    const r = (await execRaw(q('dcgmi', 'discovery', '-l'), [
      'base64.channel.k8s.io',
      'v2.channel.k8s.io',
    ])) as Frames;
    expect(r.protocol).toBe('v2.channel.k8s.io');
  });

  it.each([
    ['no known subprotocol', q('dcgmi'), ['base64.channel.k8s.io'], 400],
    ['no command', 'stdout=true', ['v5.channel.k8s.io'], 400],
    ['no stream requested', 'command=dcgmi', ['v5.channel.k8s.io'], 400],
  ])('%s → HTTP %i before the upgrade', async (_, query, protocols, status) => {
    expect(await execRaw(query, protocols)).toEqual({ status });
    expect(sim.log.find('execPod').at(-1)?.status).toBe(status);
  });

  it('after the reboot, the restarted dcgm-server container is unreachable until it is Ready', async () => {
    cluster.close();
    const clock = new ManualClock();
    cluster = new SimCluster({ nodes: 1, dcgmServer: true, clock, exporterReadyDelayMs: 30_000 });
    await sim.close();
    simExec.close();
    sim = await startSimK8s(cluster);
    simExec = attachExec(sim, cluster);
    const p = cluster
      .listPods({ namespace: 'kube-system' })
      .find((x) => x.metadata.labels?.['k8s-app'] === 'dcgm-server');
    pod = p?.metadata.name ?? '';
    cluster.rebootInstance(cluster.nodeInfo(p?.spec.nodeName ?? '')?.instanceId ?? '');
    clock.advance(3000);
    expect(cluster.nodeInfo(p?.spec.nodeName ?? '')?.rebooting).toBe(false);
    expect(await execRaw(q('dcgmi', 'discovery', '-l'), ['v5.channel.k8s.io'])).toEqual({ status: 500 });
    clock.advance(30_000);
    const answer = await execRaw(q('dcgmi', 'discovery', '-l'), ['v5.channel.k8s.io']);
    expect(answer).toMatchObject({ protocol: 'v5.channel.k8s.io' });
  });

  it('a pod on a rebooting node cannot be reached', async () => {
    const node = cluster.listPods({ namespace: 'kube-system' }).find((p) => p.metadata.name === pod)
      ?.spec.nodeName;
    const instance = cluster.nodeInfo(node ?? '')?.instanceId ?? '';
    expect(cluster.rebootInstance(instance)).toBe(true);
    expect(await execRaw(q('dcgmi', 'discovery', '-l'), ['v5.channel.k8s.io'])).toEqual({ status: 500 });
  });
});

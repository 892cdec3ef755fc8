import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { execInPod } from '../k8s/exec.js';
import { SimCluster } from './cluster.js';
import { attachExec, type SimExec } from './exec-server.js';
import { type SimK8sServer, startSimK8s } from './k8s-server.js';
import { kubeconfigFor } from './kubeconfig.js';
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
    const r = (await execRaw(q('dcgmi', 'nvlink', '-s'), ['v4.channel.k8s.io'])) as Frames;
    expect(r.protocol).toBe('v4.channel.k8s.io');
    expect(r.closeCode).toBe(1000);
    expect(r.frames[0]).toEqual({ channel: 1, text: '' });
    expect(r.frames[1]).toEqual({ channel: 2, text: 'dcgmi: unknown subcommand "nvlink"\n' });
    const last = r.frames.at(-1);
    expect(last?.channel).toBe(3);
    expect(JSON.parse(last?.text ?? '')).toEqual({
      metadata: {},
      status: 'Failure',
      reason: 'NonZeroExitCode',
      message:
        'command terminated with non-zero exit code: error executing command [dcgmi nvlink -s], exit code 255',
      details: { causes: [{ reason: 'ExitCode', message: '255' }] },
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
    const bad = (await execRaw(q('dcgmi', 'nope'), ['channel.k8s.io'])) as Frames;
    expect(bad.frames.at(-1)).toEqual({
      channel: 3,
      text: 'command terminated with non-zero exit code: error executing command [dcgmi nope], exit code 255',
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

/**
 * As on real clusters: the EKS node monitoring agent's DCGM image
 * has `dcgmi` but no `sh` or `dmesg`. containerd cannot start a missing argv[0]; the kubelet answers with
 * apierrors.NewInternalError("error executing command in container: …") on the status channel — no exit code.
 */
describe('a shell-less DCGM image (the stock EKS node monitoring agent pods)', () => {
  const notFound = (bin: string) =>
    new RegExp(
      `^Internal error occurred: error executing command in container: failed to exec in container: failed to start exec "[0-9a-f]{64}": OCI runtime exec failed: exec failed: unable to start container process: exec: "${bin}": executable file not found in \\$PATH: unknown$`,
    );

  it('runs in the pods the chart makes: k8s-app=dcgm-server, container eks-node-monitoring-agent-dcgm', () => {
    const p = cluster.listPods({ namespace: 'kube-system' }).find((x) => x.metadata.name === pod);
    expect(p?.metadata.labels).toMatchObject({ 'k8s-app': 'dcgm-server', version: 'v1' });
    expect(p?.spec.containers.map((c) => c.name)).toEqual(['eks-node-monitoring-agent-dcgm']);
    expect(p?.spec.containers[0]?.image).toMatch(/\/eks\/eks-node-monitoring-agent:/);
  });

  it.each([
    ['sh', ['sh', '-c', 'dmesg | grep -i xid | tail -20']],
    ['dmesg', ['dmesg']],
    ['/bin/sh', ['/bin/sh', '-c', 'dcgmi discovery -l']],
  ])('v4: exec of %s ends with an InternalError Status and no exit code', async (bin, command) => {
    const r = (await execRaw(q(...command), ['v4.channel.k8s.io'])) as Frames;
    expect(r.closeCode).toBe(1000);
    expect(r.frames.filter((f) => f.channel === 1 || f.channel === 2).map((f) => f.text)).toEqual(['']);
    const status = JSON.parse(r.frames.at(-1)?.text ?? '') as Record<string, unknown>;
    expect(status).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'InternalError', code: 500 });
    expect(status.message).toMatch(notFound(bin));
    expect(sim.log.find('execPod').at(-1)).not.toHaveProperty('exitCode');
  });

  it('v1: the same failure is plain text on channel 3', async () => {
    const r = (await execRaw(q('sh', '-c', 'dmesg'), ['channel.k8s.io'])) as Frames;
    expect(r.frames.at(-1)?.channel).toBe(3);
    expect(r.frames.at(-1)?.text).toMatch(notFound('sh'));
  });

  it('dcgmi as argv works', async () => {
    const r = (await execRaw(q('dcgmi', 'discovery', '-l'), ['v5.channel.k8s.io'])) as Frames;
    expect(r.frames.at(-1)).toEqual({ channel: 3, text: '{"metadata":{},"status":"Success"}' });
  });
});

describe('other DCGM pod styles', () => {
  async function podOf(
    c: SimCluster,
  ): Promise<{ ns: string; name: string; server: SimK8sServer; ex: SimExec }> {
    const server = await startSimK8s(c);
    const ex = attachExec(server, c);
    const node = c.listNodes().find((n) => n.metadata.labels?.['nvidia.com/gpu.present'] === 'true');
    const p = c.dcgmServerPod(node?.metadata.name ?? '');
    return { ns: p?.metadata.namespace ?? '', name: p?.metadata.name ?? '', server, ex };
  }

  it.each([
    [{ style: 'gpu-operator' as const }, 'gpu-operator', { app: 'nvidia-dcgm' }],
    [
      { style: 'eks-agent' as const, namespace: 'eks-node-monitoring', shell: true },
      'eks-node-monitoring',
      { 'k8s-app': 'dcgm-server' },
    ],
  ])('%j: pods in %s with their labels, an image with a shell and dmesg', async (opts, ns, labels) => {
    const c = new SimCluster({ nodes: 1, dcgmServer: opts });
    const { ns: podNs, name, server, ex } = await podOf(c);
    try {
      expect(podNs).toBe(ns);
      expect(c.getPod(podNs, name)?.metadata.labels).toMatchObject(labels);
      const kc = new KubeConfig();
      kc.loadFromString(kubeconfigFor(server.url));
      c.injectXid(c.getPod(podNs, name)?.spec.nodeName ?? '', 2, 79);
      const out = await execInPod(kc, {
        namespace: podNs,
        pod: name,
        command: ['sh', '-c', 'dmesg | grep -i xid | tail -20'],
        timeoutMs: 5000,
      });
      expect(out.exitCode).toBe(0);
      expect(out.stdout).toMatch(/NVRM: Xid \(PCI:[0-9a-f:]+\): 79,/);
    } finally {
      ex.close();
      await server.close();
      c.close();
    }
  });
});

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { parseDcgmiDiscovery, parseDcgmiDmon, parseDcgmiHealth } from '../collect/parse/dcgmi.js';
import { parseKernelXids } from '../collect/parse/kernel-log.js';
import { SimCluster } from '../sim/cluster.js';
import {
  attachExec,
  type ExecRecordedRequest,
  type SimExec,
  type SimExecHandler,
} from '../sim/exec-server.js';
import { type SimK8sServer, startSimK8s } from '../sim/k8s-server.js';
import { kubeconfigFor } from '../sim/kubeconfig.js';
import { ExecError, execInPod, isMissingCommandMessage } from './exec.js';

let cluster: SimCluster;
let sim: SimK8sServer;
let simExec: SimExec;
let kc: KubeConfig;
let override: SimExecHandler | undefined;

const gpuNode = () =>
  cluster.listNodes().find((n) => n.metadata.labels?.['nvidia.com/gpu.present'] === 'true')?.metadata.name ??
  '';
const dcgmPod = (node: string) => {
  const p = cluster
    .listPods({ namespace: 'kube-system', nodeName: node })
    .find((x) => x.metadata.labels?.['k8s-app'] === 'dcgm-server');
  if (!p) throw new Error(`no dcgm-server pod on ${node}`);
  return p.metadata.name;
};
const run = (pod: string, command: string[], extra: Partial<Parameters<typeof execInPod>[1]> = {}) =>
  execInPod(kc, { namespace: 'kube-system', pod, command, timeoutMs: 10_000, ...extra });

beforeEach(async () => {
  override = undefined;
  // The chart pinned to the Ubuntu-based image (a shell and dmesg), so the sample's pipeline can run.
  cluster = new SimCluster({ nodes: 2, dcgmServer: { shell: true }, workloads: true });
  sim = await startSimK8s(cluster);
  simExec = attachExec(sim, cluster, (req) => override?.(req), { frameBytes: 512 });
  kc = new KubeConfig();
  kc.loadFromString(kubeconfigFor(sim.url));
});

afterEach(async () => {
  simExec.close();
  await sim.close();
  cluster.close();
  sim.log.assertNoUnexpected();
});

describe('isMissingCommandMessage', () => {
  it.each([
    [
      'Internal error occurred: error executing command in container: failed to exec in container: failed to start exec "0a1b": OCI runtime exec failed: exec failed: unable to start container process: exec: "sh": executable file not found in $PATH: unknown',
      true,
    ],
    [
      'OCI runtime exec failed: exec failed: container_linux.go:348: starting container process caused "exec: \\"/bin/bash\\": stat /bin/bash: no such file or directory": unknown',
      true,
    ],
    ['exec: "/bin/sh": stat /bin/sh: no such file or directory', true],
    ['error dialing backend: dial tcp 10.0.0.1:10250: i/o timeout', false],
  ])('%s → %s', (message, missing) => {
    expect(isMissingCommandMessage(message)).toBe(missing);
  });
});

describe('execInPod with client-node Exec against the simulated API server', () => {
  it('runs every command the AWS sample ran in a dcgm-server pod, from the node GPU state', async () => {
    const node = gpuNode();
    cluster.injectXid(node, 3, 79);
    cluster.injectEcc(node, 5, { dbe: 2 });
    cluster.setHealth(node, 1, 'fail', 'GPU 1 had uncorrectable memory errors and row remapping failed.');
    const pod = dcgmPod(node);

    const discovery = await run(pod, ['dcgmi', 'discovery', '-l']);
    expect(discovery.exitCode).toBe(0);
    expect(parseDcgmiDiscovery(discovery.stdout).gpus.map((g) => g.uuid)).toEqual(
      cluster.gpuState(node).map((g) => g.uuid),
    );

    const [both, xid, ecc] = await Promise.all([
      run(pod, ['dcgmi', 'dmon', '-e', '230,319', '-c', '1']),
      run(pod, ['dcgmi', 'dmon', '-e', '230', '-c', '1']),
      run(pod, ['dcgmi', 'dmon', '-e', '319', '-c', '1']),
    ]);
    const rowOf = (text: string, i: number) => parseDcgmiDmon(text).rows.find((r) => r.id === i)?.values;
    expect(rowOf(both.stdout, 3)).toEqual({ XIDER: 79, EDVDV: 0 });
    expect(rowOf(both.stdout, 5)).toEqual({ XIDER: 0, EDVDV: 2 });
    expect(rowOf(xid.stdout, 3)).toEqual({ XIDER: 79 });
    expect(rowOf(ecc.stdout, 5)).toEqual({ EDVDV: 2 });

    const [healthJson, healthTable] = await Promise.all([
      run(pod, ['dcgmi', 'health', '-c', '-j']),
      run(pod, ['dcgmi', 'health', '-c']),
    ]);
    const h = parseDcgmiHealth(healthJson.stdout);
    expect(h.overall).toBe('fail');
    expect(h.entities.map((e) => [e.id, e.health])).toEqual([
      ['1', 'fail'],
      ['5', 'fail'],
    ]);
    expect(parseDcgmiHealth(healthTable.stdout)).toEqual(h);

    const dmesg = await run(pod, ['sh', '-c', 'dmesg | grep -i xid | tail -20']);
    expect(dmesg).toMatchObject({ exitCode: 0, stderr: '' });
    expect(parseKernelXids(dmesg.stdout).xids).toMatchObject([{ xid: 79 }]);
  });

  it('reassembles output split over many frames', async () => {
    const big = `${'x'.repeat(100)}\n`.repeat(300);
    override = () => ({ stdout: big, stderr: 'warn\n', exitCode: 0 });
    const r = await run(dcgmPod(gpuNode()), ['dcgmi', 'discovery', '-l']);
    expect(r).toEqual({ stdout: big, stderr: 'warn\n', exitCode: 0 });
  });

  it('surfaces a non-zero exit code with stderr, not as an error', async () => {
    // The simulated Ubuntu DCGM image has nvidia-smi (the GPU reset runs it); lspci is not simulated.
    const r = await run(dcgmPod(gpuNode()), ['sh', '-c', 'lspci -v']);
    expect(r).toEqual({ stdout: '', stderr: 'lspci: command not found\n', exitCode: 127 });
  });

  it('a binary the image does not have is a missing-command error (the runtime InternalError), not an exit code', async () => {
    const err = await run(dcgmPod(gpuNode()), ['lspci', '-v']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExecError);
    expect(err).toMatchObject({ code: 'missing-command' });
    expect((err as Error).message).toContain('exec: "lspci": executable file not found in $PATH');
  });

  it('a pod that does not exist is a clear not-found error', async () => {
    const err = await run('dcgm-server-nope', ['dcgmi', 'discovery', '-l']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExecError);
    expect(err).toMatchObject({ code: 'not-found', status: 404 });
    expect((err as Error).message).toContain('kube-system/dcgm-server-nope');
  });

  it('an unknown container is refused before the upgrade', async () => {
    const err = await run(dcgmPod(gpuNode()), ['dcgmi'], { container: 'sidecar' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'rejected', status: 400 });
  });

  it('records each exec in the request log as create pods/exec', async () => {
    const pod = dcgmPod(gpuNode());
    await run(pod, ['dcgmi', 'health', '-c', '-j']);
    await run('missing-pod', ['dcgmi']).catch(() => undefined);
    const execs = sim.log.find('execPod') as ExecRecordedRequest[];
    expect(execs).toHaveLength(2);
    expect(execs[0]).toMatchObject({
      service: 'k8s',
      method: 'GET',
      verb: 'create',
      resource: 'pods',
      subresource: 'exec',
      namespace: 'kube-system',
      name: pod,
      status: 101,
      protocol: 'v5.channel.k8s.io',
      command: ['dcgmi', 'health', '-c', '-j'],
      container: 'eks-node-monitoring-agent-dcgm',
      exitCode: 0,
    });
    expect(execs[1]).toMatchObject({ name: 'missing-pod', status: 404, subresource: 'exec' });
  });

  it('a command that hangs times out and its socket is closed', async () => {
    override = () => new Promise(() => undefined);
    const err = await run(dcgmPod(gpuNode()), ['dcgmi', 'discovery', '-l'], { timeoutMs: 200 }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ name: 'ExecError', code: 'timeout' });
    await expect.poll(() => simExec.active).toBe(0);
  });

  it('output beyond maxBytes is refused, not buffered', async () => {
    override = () => ({ stdout: 'y'.repeat(20_000), exitCode: 0 });
    const err = await run(dcgmPod(gpuNode()), ['dcgmi', 'discovery', '-l'], { maxBytes: 4096 }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'too-large' });
  });

  it('an aborted signal stops the exec', async () => {
    override = () => new Promise(() => undefined);
    const ac = new AbortController();
    const p = run(dcgmPod(gpuNode()), ['dcgmi', 'discovery', '-l'], { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await expect(p).rejects.toMatchObject({ code: 'aborted' });
  });

  it('a handler crash ends the exec with the InternalError status as an ExecError', async () => {
    override = () => Promise.reject(new Error('runc exploded'));
    const err = await run(dcgmPod(gpuNode()), ['dcgmi', 'discovery', '-l']).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'failed' });
    expect((err as Error).message).toContain('runc exploded');
  });

  it('an unknown upgrade path is refused and recorded as unexpected', async () => {
    const err = await execInPod(kc, {
      namespace: 'kube-system',
      pod: 'x/../../../../api/v1/nodes',
      command: ['true'],
      timeoutMs: 5000,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExecError);
    expect(sim.log.unexpected).toHaveLength(1);
    sim.log.clear();
  });
});

describe('execInPod against a misbehaving server', () => {
  let server: Server | undefined;
  let wss: WebSocketServer | undefined;

  afterEach(async () => {
    wss?.close();
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  });

  const start = async (onOpen: (send: (b: Buffer) => void, close: () => void) => void) => {
    server = createServer();
    wss = new WebSocketServer({ server, handleProtocols: (p) => [...p][0] ?? false });
    wss.on('connection', (ws) =>
      onOpen(
        (b) => ws.send(b),
        () => ws.close(),
      ),
    );
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
    const k = new KubeConfig();
    k.loadFromString(kubeconfigFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
    return k;
  };

  it.each([
    ['a frame on an unknown channel', Buffer.from([7, 65])],
    ['an unreadable status', Buffer.concat([Buffer.from([3]), Buffer.from('{not json')])],
  ])('%s is a protocol error, never a crash', async (_, frame) => {
    const k = await start((send) => send(frame));
    const err = await execInPod(k, { namespace: 'ns', pod: 'p', command: ['x'], timeoutMs: 5000 }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ name: 'ExecError', code: 'protocol' });
  });

  it('a stream that closes without a status is an error', async () => {
    const k = await start((send, close) => {
      send(Buffer.from([1, 104, 105]));
      close();
    });
    const err = await execInPod(k, { namespace: 'ns', pod: 'p', command: ['x'], timeoutMs: 5000 }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'closed' });
  });
});

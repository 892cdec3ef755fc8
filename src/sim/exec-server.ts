/**
 * The pod `exec` subresource for the simulated API server: `GET /api/v1/namespaces/NS/pods/NAME/exec?command=…`
 * upgraded to a WebSocket speaking Kubernetes' channel protocol, as kube-apiserver serves it to
 * @kubernetes/client-node's `Exec`:
 *   - subprotocols v5/v4/v3/v2.channel.k8s.io and channel.k8s.io, the first the client offers that we know;
 *   - every binary frame starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error/status, 4 resize
 *     (255 close, v5, client → server only: client-node 1.4 throws on an unknown channel it receives);
 *   - an empty frame on the lowest writable channel right after the handshake (wsstream does that);
 *   - v4+: the v1 Status JSON on channel 3 at the end (Success, or NonZeroExitCode with an ExitCode cause);
 *     v1–v3: the error text on channel 3 only on failure. Then a normal close.
 * In DCGM host-engine pods the commands the AWS sample ran are answered from the pod's node GPU state, with only
 * the binaries the pod's image has: the EKS node monitoring agent's image has `dcgmi` but no `sh` or `dmesg`.
 * A command whose binary is not in the image never starts: as containerd reports it through the kubelet, the
 * session ends with an InternalError Status ("… executable file not found in $PATH …"), not an exit code.
 */
import { randomBytes } from 'node:crypto';
import { type IncomingMessage, type Server, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { type WebSocket, WebSocketServer } from 'ws';
import type { SimCluster } from './cluster.js';
import { simDiagExec } from './dcgmi-diag.js';
import {
  DMON_FIELD_TABLE,
  dmonRowsFromSim,
  healthReportsFromSim,
  renderDiscovery,
  renderDmesg,
  renderDmon,
  renderHealthJson,
  renderHealthTable,
} from './dcgmi-render.js';
import type { KubePod } from './k8s-objects.js';
import { type K8sRecordedRequest, statusBody } from './k8s-server.js';
import type { RequestLog } from './recorder.js';
import type { SimGpu } from './sim-gpu.js';

export const EXEC_PROTOCOLS = [
  'v5.channel.k8s.io',
  'v4.channel.k8s.io',
  'v3.channel.k8s.io',
  'v2.channel.k8s.io',
  'channel.k8s.io',
] as const;
export type ExecProtocol = (typeof EXEC_PROTOCOLS)[number];

export const Channel = { stdin: 0, stdout: 1, stderr: 2, status: 3, resize: 4, close: 255 } as const;

/** The audit record of one exec; `exitCode` is filled in when the command ends. */
export interface ExecRecordedRequest extends K8sRecordedRequest {
  command?: string[];
  container?: string;
  protocol?: string;
  exitCode?: number;
}

export interface SimExecRequest {
  namespace: string;
  podName: string;
  pod: KubePod;
  container: string;
  node?: string;
  command: string[];
}

export interface SimExecResult {
  stdout: string;
  stderr?: string;
  exitCode: number;
  /**
   * The runtime could not start the command (a binary missing from the image): the session ends with an
   * InternalError Status carrying this text, and no exit code.
   */
  startError?: string;
}

/**
 * Overrides the simulated command for a test (a hang, huge output, a crash): return undefined to fall
 * back to the default behaviour. A rejected promise ends the exec with an InternalError status.
 */
export type SimExecHandler = (
  req: SimExecRequest,
) => SimExecResult | undefined | Promise<SimExecResult | undefined>;

export interface SimExecOptions {
  logger?: Logger;
  /** Bytes per stdout/stderr frame (kube-apiserver relays in chunks; small values exercise reassembly). */
  frameBytes?: number;
}

export interface SimExec {
  /** Open exec sessions. */
  readonly active: number;
  /** Terminates open sessions and stops serving exec (call before SimK8sServer.close()). */
  close(): void;
}

const EXEC_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/exec$/;

function rejectUpgrade(socket: Duplex, status: number, reason: string, message: string): void {
  const body = statusBody(status, reason, message);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

function pickProtocol(header: string | undefined): ExecProtocol | undefined | false {
  if (!header) return undefined;
  const offered = header.split(',').map((p) => p.trim());
  const known = offered.find((p): p is ExecProtocol => (EXEC_PROTOCOLS as readonly string[]).includes(p));
  return known ?? false;
}

export function attachExec(
  simK8s: { server: Server; log: RequestLog },
  cluster: SimCluster,
  handler?: SimExecHandler,
  opts: SimExecOptions = {},
): SimExec {
  const { server, log } = simK8s;
  const logger = opts.logger;
  const frameBytes = Math.max(1, opts.frameBytes ?? 32 * 1024);
  const sockets = new Set<WebSocket>();
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => {
      for (const p of protocols) if ((EXEC_PROTOCOLS as readonly string[]).includes(p)) return p;
      return false;
    },
  });
  let closed = false;

  /** Returns whether this listener answered the request. */
  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = new URL(req.url ?? '/', 'http://sim');
    const m = EXEC_PATH.exec(url.pathname);
    const method = req.method ?? 'GET';
    const rec: ExecRecordedRequest = {
      service: 'k8s',
      method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      body: '',
      status: 0,
      at: Date.now(),
      verb: 'get',
    };
    if (!m) {
      // Another upgrade listener may serve it (attach, portforward); alone, we refuse it loudly.
      if (server.listenerCount('upgrade') > 1) return false;
      rec.status = 404;
      log.recordUnexpected(rec);
      logger?.warn({ path: url.pathname }, 'sim k8s: unexpected upgrade request');
      rejectUpgrade(socket, 404, 'NotFound', 'the server could not find the requested resource');
      return true;
    }
    const namespace = decodeURIComponent(m[1] ?? '');
    const podName = decodeURIComponent(m[2] ?? '');
    const command = url.searchParams.getAll('command');
    Object.assign(rec, {
      verb: 'create',
      operation: 'execPod',
      resource: 'pods',
      subresource: 'exec',
      apiGroup: '',
      namespace,
      name: podName,
      command,
    });
    rec.query.command = JSON.stringify(command);
    const fail = (status: number, reason: string, message: string): true => {
      rec.status = status;
      log.record(rec);
      rejectUpgrade(socket, status, reason, message);
      return true;
    };
    if (closed) return fail(503, 'ServiceUnavailable', 'exec is shutting down');
    const pod = cluster.getPod(namespace, podName);
    if (!pod) return fail(404, 'NotFound', `pods "${podName}" not found`);
    if (command.length === 0) return fail(400, 'BadRequest', 'you must specify at least 1 command');
    const flag = (k: string) => url.searchParams.get(k) === 'true' || url.searchParams.get(k) === '1';
    const wants = { stdin: flag('stdin'), stdout: flag('stdout'), stderr: flag('stderr') };
    if (!wants.stdin && !wants.stdout && !wants.stderr)
      return fail(400, 'BadRequest', 'you must specify at least 1 of stdin, stdout, stderr');
    const names = pod.spec.containers.map((c) => c.name);
    let container = url.searchParams.get('container') ?? '';
    if (container === '') {
      if (names.length !== 1)
        return fail(
          400,
          'BadRequest',
          `a container name must be specified for pod ${podName}, choose one of: [${names.join(' ')}]`,
        );
      container = names[0] ?? '';
    }
    if (!names.includes(container))
      return fail(400, 'BadRequest', `container ${container} is not valid for pod ${podName}`);
    rec.container = container;
    const node = pod.spec.nodeName;
    const info = node ? cluster.nodeInfo(node) : undefined;
    const starting = pod.status.containerStatuses?.some((c) => c.name === container && c.started === false);
    if (pod.status.phase !== 'Running' || info?.rebooting || starting) {
      return fail(
        500,
        'InternalError',
        `error dialing backend: pod ${podName} on node ${node ?? '<none>'} is not running`,
      );
    }
    const protocol = pickProtocol(
      Array.isArray(req.headers['sec-websocket-protocol'])
        ? req.headers['sec-websocket-protocol'].join(',')
        : req.headers['sec-websocket-protocol'],
    );
    if (protocol === false)
      return fail(
        400,
        'BadRequest',
        `none of the offered subprotocols is supported: ${EXEC_PROTOCOLS.join(', ')}`,
      );

    wss.handleUpgrade(req, socket, head, (ws) => {
      rec.status = 101;
      rec.protocol = ws.protocol || 'channel.k8s.io';
      log.record(rec);
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
      ws.on('error', (err) => logger?.debug({ err: err.message }, 'sim exec: socket error'));
      // stdin, resize and v5 close frames are accepted and ignored: no simulated command reads input.
      ws.on('message', () => undefined);
      const execReq: SimExecRequest = { namespace, podName, pod, container, command };
      if (node) execReq.node = node;
      void runSession(ws, execReq, wants, rec);
    });
    return true;
  }

  async function runSession(
    ws: WebSocket,
    req: SimExecRequest,
    wants: { stdout: boolean; stderr: boolean },
    rec: ExecRecordedRequest,
  ): Promise<void> {
    const send = (channel: number, data: Buffer) => {
      if (ws.readyState !== ws.OPEN) return;
      ws.send(Buffer.concat([Buffer.from([channel]), data]));
    };
    const stream = (channel: number, text: string) => {
      const buf = Buffer.from(text, 'utf8');
      for (let off = 0; off < buf.length; off += frameBytes)
        send(channel, buf.subarray(off, off + frameBytes));
    };
    send(wants.stdout ? Channel.stdout : Channel.stderr, Buffer.alloc(0));
    const v4 = ws.protocol === 'v4.channel.k8s.io' || ws.protocol === 'v5.channel.k8s.io';
    let result: SimExecResult;
    try {
      result = (await handler?.(req)) ?? (await simDiagExec(cluster, req)) ?? defaultExec(cluster, req);
    } catch (e) {
      const message = `Internal error occurred: error executing command in container: ${(e as Error).message}`;
      if (v4) send(Channel.status, Buffer.from(statusBody(500, 'InternalError', message)));
      else send(Channel.status, Buffer.from(message));
      ws.close(1000);
      return;
    }
    if (result.startError !== undefined) {
      // kubelet: apierrors.NewInternalError(fmt.Errorf("error executing command in container: %v", err)).
      const cause = `error executing command in container: ${result.startError}`;
      const message = `Internal error occurred: ${cause}`;
      if (v4)
        send(
          Channel.status,
          Buffer.from(statusBody(500, 'InternalError', message, { causes: [{ message: cause }] })),
        );
      else send(Channel.status, Buffer.from(message));
      ws.close(1000);
      return;
    }
    rec.exitCode = result.exitCode;
    if (wants.stdout && result.stdout) stream(Channel.stdout, result.stdout);
    if (wants.stderr && result.stderr) stream(Channel.stderr, result.stderr);
    const failure = `command terminated with non-zero exit code: error executing command [${req.command.join(' ')}], exit code ${result.exitCode}`;
    if (v4) {
      const status =
        result.exitCode === 0
          ? { metadata: {}, status: 'Success' }
          : {
              metadata: {},
              status: 'Failure',
              message: failure,
              reason: 'NonZeroExitCode',
              details: { causes: [{ reason: 'ExitCode', message: String(result.exitCode) }] },
            };
      send(Channel.status, Buffer.from(JSON.stringify(status)));
    } else if (result.exitCode !== 0) {
      send(Channel.status, Buffer.from(failure));
    }
    ws.close(1000);
  }

  server.on('upgrade', onUpgrade);
  return {
    get active() {
      return sockets.size;
    },
    close() {
      closed = true;
      server.off('upgrade', onUpgrade);
      for (const ws of sockets) ws.terminate();
      sockets.clear();
      wss.close();
    },
  };
}

/** The default behaviour: DCGM host-engine pods answer from their node; any other pod has none of these tools. */
function defaultExec(cluster: SimCluster, req: SimExecRequest): SimExecResult {
  const ds = cluster.dcgmServer;
  if (!ds || !cluster.isDcgmServerPod(req.pod) || !req.node) return runSimCommand(req.command, undefined);
  const gpus = cluster.gpuState(req.node).filter((g) => g.present);
  const node = req.node;
  const host: DcgmHost = {
    gpus,
    kernelLog: cluster.kernelLog(node),
    nvidiaSmi: (args) => cluster.nvidiaSmi(node, args),
  };
  if (ds.tools) host.tools = new Set(ds.tools);
  return runSimCommand(req.command, host);
}

// ---------------------------------------------------------------- the command interpreter

export interface DcgmHost {
  /** GPUs DCGM can see (present ones). */
  gpus: SimGpu[];
  kernelLog: string[];
  /** The binaries in the pod's image; undefined = an Ubuntu userland (sh, bash, dmesg, grep, tail, head, dcgmi, nvidia-smi). */
  tools?: ReadonlySet<string>;
  /** `nvidia-smi ARGS` on the node (src/sim/nvidia-smi.ts). */
  nvidiaSmi?: (args: readonly string[]) => ReturnType<Stage>;
}

/** containerd's words, as the kubelet relays them, for an argv[0] that is not in the image. */
export function runtimeNotFound(binary: string): string {
  return `failed to exec in container: failed to start exec "${randomBytes(32).toString('hex')}": OCI runtime exec failed: exec failed: unable to start container process: exec: "${binary}": executable file not found in $PATH: unknown`;
}

const baseName = (path: string) => path.slice(path.lastIndexOf('/') + 1);

type Stage = (input: string[] | undefined) => { out: string[]; err?: string; code: number };

const SHELLS = new Set(['sh', 'bash']);
/** What an Ubuntu-based DCGM image (GPU Operator, dcgm-exporter) offers among the commands simulated here. */
const USERLAND: ReadonlySet<string> = new Set([
  'sh',
  'bash',
  'dmesg',
  'grep',
  'tail',
  'head',
  'dcgmi',
  'nv-hostengine',
  'nvidia-smi',
]);

/** Splits a `sh -c` script into pipeline stages of words; quotes group, `|` outside quotes separates. */
export function splitPipeline(script: string): string[][] {
  const stages: string[][] = [[]];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  const flush = () => {
    if (inWord) stages[stages.length - 1]?.push(word);
    word = '';
    inWord = false;
  };
  for (const ch of script) {
    if (quote) {
      if (ch === quote) quote = undefined;
      else word += ch;
      continue;
    }
    if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (ch === '|') {
      flush();
      stages.push([]);
    } else if (/\s/.test(ch)) flush();
    else {
      word += ch;
      inWord = true;
    }
  }
  flush();
  return stages;
}

const notFound = (name: string) => ({ out: [], err: `${name}: command not found\n`, code: 127 });

function lines(text: string): string[] {
  const l = text.split('\n');
  if (l[l.length - 1] === '') l.pop();
  return l;
}

function dcgmiStage(args: string[], host: DcgmHost): ReturnType<Stage> {
  const [sub, ...rest] = args;
  const has = (...flags: string[]) => rest.some((a) => flags.includes(a));
  const value = (...flags: string[]) => {
    const i = rest.findIndex((a) => flags.includes(a));
    return i >= 0 ? rest[i + 1] : undefined;
  };
  const usage = (msg: string) => ({ out: [], err: `${msg}\n`, code: 255 });
  switch (sub) {
    case 'discovery':
      if (!has('-l', '--list')) return usage('Usage: dcgmi discovery -l');
      return { out: lines(renderDiscovery(host.gpus)), code: 0 };
    case 'dmon': {
      const fields = value('-e', '--field-id');
      if (!fields) return usage('Error: dmon needs -e <field ids>');
      const ids = fields.split(',').map((f) => Number(f.trim()));
      const bad = ids.filter((id) => !Number.isInteger(id) || !DMON_FIELD_TABLE[id]);
      if (bad.length > 0) return usage(`Error: Invalid field id(s): ${fields}`);
      const countText = value('-c', '--count') ?? '1';
      const count = Number(countText);
      if (!Number.isInteger(count) || count < 1 || count > 100)
        return usage(`Error: Invalid count ${countText}`);
      const shorts = ids.map((id) => DMON_FIELD_TABLE[id]?.short ?? String(id));
      return { out: lines(renderDmon(shorts, dmonRowsFromSim(host.gpus, ids), count)), code: 0 };
    }
    case 'health': {
      if (!has('-c', '--check')) return usage('Usage: dcgmi health -c [-j]');
      const reports = healthReportsFromSim(host.gpus);
      const text = has('-j', '--json') ? renderHealthJson(reports) : renderHealthTable(reports);
      return { out: lines(text), code: 0 };
    }
    default:
      return usage(`dcgmi: unknown subcommand ${JSON.stringify(sub ?? '')}`);
  }
}

function grepStage(args: string[], input: string[]): ReturnType<Stage> {
  let ignoreCase = false;
  let invert = false;
  let pattern: string | undefined;
  for (const a of args) {
    if (pattern === undefined && /^-[a-zA-Z]+$/.test(a)) {
      if (a.includes('i')) ignoreCase = true;
      if (a.includes('v')) invert = true;
    } else if (pattern === undefined) pattern = a;
  }
  if (pattern === undefined) return { out: [], err: 'Usage: grep [OPTION]... PATTERNS [FILE]...\n', code: 2 };
  let re: RegExp;
  try {
    re = new RegExp(pattern, ignoreCase ? 'i' : '');
  } catch {
    return { out: [], err: `grep: Invalid regular expression\n`, code: 2 };
  }
  const out = input.filter((l) => re.test(l) !== invert);
  return { out, code: out.length > 0 ? 0 : 1 };
}

function tailHeadStage(name: 'tail' | 'head', args: string[], input: string[]): ReturnType<Stage> {
  let n = 10;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    const v =
      a === '-n' ? args[++i] : /^-\d+$/.test(a) ? a.slice(1) : /^-n\d+$/.test(a) ? a.slice(2) : undefined;
    if (v === undefined || !/^\d+$/.test(v))
      return { out: [], err: `${name}: invalid option ${a}\n`, code: 1 };
    n = Number(v);
  }
  return { out: name === 'tail' ? input.slice(Math.max(0, input.length - n)) : input.slice(0, n), code: 0 };
}

/**
 * Runs what the AWS sample ran in a DCGM pod: `dcgmi discovery|dmon|health`, and `dmesg` alone or through
 * `grep`/`tail`/`head` pipelines under `sh -c`, with only the binaries the image has. Without a host (not a
 * DCGM pod) none of them exists.
 */
export function runSimCommand(command: readonly string[], host: DcgmHost | undefined): SimExecResult {
  const [first, flag, script] = command;
  const has = (name: string) => host !== undefined && (host.tools ?? USERLAND).has(baseName(name));
  // The runtime starts argv[0] itself: missing from the image, nothing runs at all.
  if (first !== undefined && !has(first))
    return { stdout: '', exitCode: 126, startError: runtimeNotFound(first) };
  const pipeline =
    first && SHELLS.has(baseName(first)) && flag === '-c' ? splitPipeline(script ?? '') : [[...command]];
  let input: string[] | undefined;
  let stderr = '';
  let code = 0;
  for (const [path, ...args] of pipeline) {
    if (!path) return { stdout: '', stderr: 'sh: syntax error: empty command\n', exitCode: 2 };
    const name = baseName(path);
    let r: ReturnType<Stage>;
    if (!host || !has(name)) r = notFound(name);
    else if (name === 'dcgmi') r = dcgmiStage(args, host);
    else if (name === 'nvidia-smi' && host.nvidiaSmi) r = host.nvidiaSmi(args);
    else if (name === 'dmesg') r = { out: renderDmesg(host.kernelLog), code: 0 };
    else if (name === 'grep') r = grepStage(args, input ?? []);
    else if (name === 'tail' || name === 'head') r = tailHeadStage(name, args, input ?? []);
    else r = notFound(name);
    input = r.out;
    stderr += r.err ?? '';
    code = r.code;
  }
  const out = input ?? [];
  return { stdout: out.length > 0 ? `${out.join('\n')}\n` : '', stderr, exitCode: code };
}

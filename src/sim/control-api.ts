/**
 * The simulator's control API: what a demo script, the benchmark or a person with curl uses to inject
 * faults into a running simulator and to read its state — JSON over loopback HTTP.
 *
 *   GET  /healthz                          → `{ ok: true }`
 *   GET  /state[?node=NAME]                → `SimState` (every node, or one: 404 when unknown)
 *   POST /faults   `FaultRequest`          → `{ ok: true, node, kind }`; 400 bad input, 404 unknown node
 *   POST /clear    `{ node }`              → back to a healthy node (faults, conditions, exporter mode)
 *   POST /pdb      `{ namespace, name, disruptionsAllowed }` → pins a PDB's disruptionsAllowed
 *   POST /counters `{ counters: 'stock'|'full', node? }` → the exporters' counters file, one node or the
 *                                          cluster default (`counters: null` with a node: back to the default)
 *   GET  /requests[?service=k8s&since=N&limit=M] → the shared request log from sequence number N
 *   GET  /requests/count                   → totals only, cheap at any fleet size
 *   GET  /process                          → `process.cpuUsage()` and RSS of the serving process
 *   POST /k8s/faults  `K8sFault`           → queue an API fault: `{ operation?, verb?, pathPrefix?, status?,
 *                                            retryAfterSeconds?, drop?, message?, times? }` (500, 429 + Retry-After,
 *                                            409, 410 on a watch, a dropped watch, 401 …); DELETE clears the queue
 *   POST /k8s/watches/drop                 → cut every open watch stream now: `{ ok, dropped }`
 *   POST /aws/faults  `AwsFaultRequest`    → `{ service, status?, code?, operation?, times?, delayMs? }` (EC2
 *                                            UnauthorizedOperation, InvalidInstanceID.NotFound, RequestLimitExceeded …)
 *
 * In-process, the same controls are the `SimCluster` methods (`injectXid`, `injectEcc`,
 * `injectRowRemapFailure`, `injectNvlinkErrors`, `setTemperature`, `dropGpu`, `setHealth`,
 * `setCondition`, `setExporter`, `injectDiag` (kind `diag`: what `dcgmi diag` reports for a test and GPU),
 * `clearFaults`, `setPdbDisruptionsAllowed`, `setCounters`,
 * `setDefaultCounters`) or `applyFault` below,
 * which takes the very `FaultRequest` the HTTP API takes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import { HealthStates } from '../domain/gpu.js';
import { AWS_SERVICES, type AwsFaults, type BedrockScripts } from './aws-server.js';
import type { SimCluster } from './cluster.js';
import { clusterState, nodeState } from './control-state.js';
import { CounterSets } from './dcgm-exporter.js';
import { SimDiagTests } from './dcgmi-diag.js';
import { BodyError, listen, pathAndQuery, readBody, send } from './http-util.js';
import { K8sFault, type K8sFaults } from './k8s-faults.js';
import { type RecordedRequest, RequestLog } from './recorder.js';
import { ApiError } from './resource-store.js';

export {
  clusterState,
  nodeState,
  type SimGpuFault,
  type SimNodeState,
  type SimState,
} from './control-state.js';

// ─── fault requests ─────────────────────────────────────────────────────────────────────────────

const nodeName = z.string().min(1, 'node: expected a node name');
const gpuIndex = z.number().int().min(0);
const persistent = z.boolean().optional();
const count = z.number().int().min(0);

export const FaultRequest = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('xid'),
    node: nodeName,
    gpu: gpuIndex,
    xid: z.number().int().min(1).max(65535),
    message: z.string().max(4096).optional(),
    /** MIG GPU instance the XID is raised in (the kernel line names it as `GPU-I:NN`). */
    gpuInstance: z.number().int().min(0).max(255).optional(),
    persistent,
  }),
  z.object({
    kind: z.literal('ecc'),
    node: nodeName,
    gpu: gpuIndex,
    sbe: count.optional(),
    dbe: count.optional(),
    persistent,
  }),
  z.object({ kind: z.literal('row-remap'), node: nodeName, gpu: gpuIndex, persistent }),
  z.object({
    kind: z.literal('nvlink'),
    node: nodeName,
    gpu: gpuIndex,
    count: count.default(1),
    counter: z.enum(['crcFlit', 'crcData', 'replay', 'recovery']).optional(),
    persistent,
  }),
  z.object({
    kind: z.literal('thermal'),
    node: nodeName,
    gpu: gpuIndex,
    temperature: z.number().min(-40).max(200),
  }),
  z.object({ kind: z.literal('drop-gpu'), node: nodeName, gpu: gpuIndex, persistent }),
  z.object({
    kind: z.literal('health'),
    node: nodeName,
    gpu: gpuIndex,
    state: z.enum(HealthStates),
    message: z.string().max(4096).optional(),
    persistent,
  }),
  z.object({
    kind: z.literal('condition'),
    node: nodeName,
    /** Condition type, e.g. `AcceleratedHardwareReady`. */
    type: z.string().min(1).max(316),
    status: z.enum(['True', 'False', 'Unknown']),
    reason: z.string().max(1024).optional(),
    message: z.string().max(32768).optional(),
    persistent,
  }),
  z.object({
    kind: z.literal('diag'),
    node: nodeName,
    /** One GPU; every GPU of the node when omitted. */
    gpu: gpuIndex.optional(),
    test: z.enum(SimDiagTests),
    status: z.enum(['fail', 'warn', 'skip']),
    message: z.string().max(1024).optional(),
    times: z.number().int().min(1).optional(),
  }),
  z.object({
    kind: z.literal('exporter'),
    node: nodeName,
    mode: z.enum(['ok', 'hang', 'error', 'garbage', 'missing']),
  }),
]);
/** What the caller sends (defaults not applied yet). */
export type FaultRequest = z.input<typeof FaultRequest>;
export type FaultKind = FaultRequest['kind'];

export const ClearRequest = z.object({ node: nodeName });
export type ClearRequest = z.infer<typeof ClearRequest>;

export const PdbRequest = z.object({
  namespace: z.string().min(1),
  name: z.string().min(1),
  disruptionsAllowed: z.number().int().min(0),
});
export type PdbRequest = z.infer<typeof PdbRequest>;

/** Which counters file the exporters run with: one node (null = back to the cluster's), or the cluster default. */
export const CountersRequest = z.union([
  z.object({ node: nodeName, counters: z.enum(CounterSets).nullable() }).strict(),
  z.object({ counters: z.enum(CounterSets) }).strict(),
]);
export type CountersRequest = z.infer<typeof CountersRequest>;

/** A request the control API refuses: `status` is the HTTP answer, `message` says why. */
export class ControlError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ControlError';
  }
}

/** `kind: Invalid option …; gpu: Too small …` — one line naming each bad field, for curl users. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
}

function parseOrThrow<T>(schema: z.ZodType<T>, input: unknown): T {
  const r = schema.safeParse(input);
  if (!r.success) throw new ControlError(400, describeIssues(r.error));
  return r.data;
}

function requireNode(cluster: SimCluster, node: string): void {
  if (!cluster.nodeInfo(node)) throw new ControlError(404, `unknown node ${node}`);
}

function requireGpu(cluster: SimCluster, node: string, gpu: number): void {
  const n = cluster.gpuState(node).length;
  if (gpu >= n) throw new ControlError(400, `node ${node} has ${n} GPU(s): no GPU ${gpu}`);
}

/**
 * Validates a fault (unknown input → ControlError 400, unknown node → 404) and applies it to the
 * cluster. The same entry for HTTP, IPC and in-process callers.
 */
export function applyFault(cluster: SimCluster, input: unknown): FaultKind {
  const f = parseOrThrow(FaultRequest, input);
  requireNode(cluster, f.node);
  if ('gpu' in f && f.gpu !== undefined) requireGpu(cluster, f.node, f.gpu);
  const opts = 'persistent' in f && f.persistent ? { persistent: true } : {};
  try {
    switch (f.kind) {
      case 'xid':
        cluster.injectXid(f.node, f.gpu, f.xid, f.message, {
          ...opts,
          ...(f.gpuInstance !== undefined ? { gpuInstance: f.gpuInstance } : {}),
        });
        break;
      case 'ecc':
        cluster.injectEcc(f.node, f.gpu, {
          ...(f.sbe !== undefined ? { sbe: f.sbe } : {}),
          ...(f.dbe !== undefined ? { dbe: f.dbe } : {}),
          ...opts,
        });
        break;
      case 'row-remap':
        cluster.injectRowRemapFailure(f.node, f.gpu, opts);
        break;
      case 'nvlink':
        cluster.injectNvlinkErrors(f.node, f.gpu, f.count, {
          ...opts,
          ...(f.counter ? { counter: f.counter } : {}),
        });
        break;
      case 'thermal':
        cluster.setTemperature(f.node, f.gpu, f.temperature);
        break;
      case 'drop-gpu':
        cluster.dropGpu(f.node, f.gpu, opts);
        break;
      case 'health':
        cluster.setHealth(f.node, f.gpu, f.state, f.message, opts);
        break;
      case 'condition':
        cluster.setCondition(
          f.node,
          {
            type: f.type,
            status: f.status,
            ...(f.reason !== undefined ? { reason: f.reason } : {}),
            ...(f.message !== undefined ? { message: f.message } : {}),
          },
          opts,
        );
        break;
      case 'exporter':
        cluster.setExporter(f.node, f.mode);
        break;
      case 'diag':
        cluster.injectDiag(f.node, {
          test: f.test,
          status: f.status,
          ...(f.gpu !== undefined ? { gpu: f.gpu } : {}),
          ...(f.message !== undefined ? { message: f.message } : {}),
          ...(f.times !== undefined ? { times: f.times } : {}),
        });
        break;
    }
  } catch (e) {
    // The cluster refuses impossible faults (an exporter mode on a node without GPUs) with plain Errors.
    throw new ControlError(400, (e as Error).message);
  }
  return f.kind;
}

export function applyClear(cluster: SimCluster, input: unknown): string {
  const { node } = parseOrThrow(ClearRequest, input);
  requireNode(cluster, node);
  cluster.clearFaults(node);
  return node;
}

export function applyPdb(cluster: SimCluster, input: unknown): PdbRequest {
  const p = parseOrThrow(PdbRequest, input);
  try {
    cluster.setPdbDisruptionsAllowed(p.namespace, p.name, p.disruptionsAllowed);
  } catch (e) {
    if (e instanceof ApiError) throw new ControlError(e.status, e.message);
    throw e;
  }
  return p;
}

export function applyCounters(cluster: SimCluster, input: unknown): CountersRequest {
  const r = parseOrThrow(CountersRequest, input);
  if ('node' in r) {
    requireNode(cluster, r.node);
    try {
      cluster.setCounters(r.node, r.counters ?? undefined);
    } catch (e) {
      throw new ControlError(400, (e as Error).message);
    }
  } else cluster.setDefaultCounters(r.counters);
  return r;
}

// ─── the request log, cheaply ───────────────────────────────────────────────────────────────────

/**
 * A RequestLog that also counts what it has seen, so totals stay exact and cheap when the log itself
 * is bounded (`limit`) for the benchmark. Sequence numbers count requests from 0 in arrival order
 * and survive `clear()`, so a reader's `since` never points into the future.
 */
export class CountingRequestLog extends RequestLog {
  private count = 0;
  private readonly perService = new Map<string, number>();

  override record(r: RecordedRequest): void {
    this.count += 1;
    this.perService.set(r.service, (this.perService.get(r.service) ?? 0) + 1);
    super.record(r);
  }

  total(): number {
    return this.count;
  }

  byService(): Record<string, number> {
    return Object.fromEntries(this.perService);
  }
}

export interface RequestsPage {
  /** Sequence number of the first request returned (older ones may have been dropped by the bound). */
  from: number;
  /** Pass as `since` to get what came after this page. */
  next: number;
  total: number;
  requests: Array<Omit<RecordedRequest, 'headers'> & { seq: number }>;
}

const REQUEST_BODY_CHARS = 2048;
const MAX_PAGE = 1000;

export function requestsPage(
  counted: CountingRequestLog,
  opts: { service?: string; since?: number; limit?: number } = {},
): RequestsPage {
  const all = counted.requests;
  const total = counted.total();
  const firstSeq = total - all.length;
  const since = Math.max(opts.since ?? 0, firstSeq);
  const limit = Math.min(opts.limit ?? MAX_PAGE, MAX_PAGE);
  const requests: RequestsPage['requests'] = [];
  let next = since;
  for (let i = since - firstSeq; i < all.length && requests.length < limit; i++) {
    const r = all[i];
    next = firstSeq + i + 1;
    if (!r || (opts.service && r.service !== opts.service)) continue;
    const { headers: _headers, ...rest } = r;
    requests.push({ ...rest, body: r.body.slice(0, REQUEST_BODY_CHARS), seq: firstSeq + i });
  }
  return { from: since, next: Math.max(next, since), total, requests };
}

// ─── the HTTP server ────────────────────────────────────────────────────────────────────────────

export interface ControlServerOptions {
  port?: number;
  logger?: Logger;
  /** The Bedrock fake, so an out-of-process simulator (the benchmark's) can be given a standing answer. */
  bedrock?: BedrockScripts;
  /** The API server's fault queue and watch streams (`/k8s/faults`, `/k8s/watches/drop`). */
  k8s?: { faults: K8sFaults; dropWatches(): number };
  /** The AWS fake's faults (`/aws/faults`). */
  aws?: { faults: AwsFaults };
}

/** `POST /aws/faults`: an error (or a delay) for one AWS service, optionally one operation. */
export const AwsFaultRequest = z
  .object({
    service: z.enum(AWS_SERVICES),
    status: z.number().int().min(400).max(599).optional(),
    code: z.string().min(1).optional(),
    message: z.string().optional(),
    operation: z.string().min(1).optional(),
    times: z.number().int().min(1).optional(),
    delayMs: z.number().int().min(0).max(120_000).optional(),
  })
  .strict()
  .refine((f) => f.status !== undefined || f.code !== undefined || f.delayMs !== undefined, {
    message: 'an AWS fault needs a status, a code or a delayMs',
  });

/** `POST /bedrock/answer`: the answer every Converse call gets until it is changed or cleared. */
export const BedrockAnswerRequest = z
  .object({
    toolUse: z.object({ name: z.string().min(1), input: z.unknown() }).optional(),
    text: z.string().optional(),
    error: z.string().optional(),
    status: z.number().int().min(400).max(599).optional(),
    delayMs: z.number().int().min(0).max(120_000).optional(),
    usage: z
      .object({ inputTokens: z.number().int().min(0), outputTokens: z.number().int().min(0) })
      .optional(),
  })
  .strict()
  .refine((a) => a.toolUse || a.text !== undefined || a.error, { message: 'give toolUse, text or error' });
export type BedrockAnswerRequest = z.infer<typeof BedrockAnswerRequest>;

export interface ControlServer {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  url: string;
  close(): Promise<void>;
}

const JSON_TYPE = 'application/json';
const BODY_LIMIT = 64 * 1024;

function intParam(q: Record<string, string>, key: string): number | undefined {
  const v = q[key];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new ControlError(400, `${key}: expected a non-negative integer`);
  return n;
}

function parseJsonBody(text: string): unknown {
  if (text.trim() === '') throw new ControlError(400, 'expected a JSON body');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ControlError(400, `body is not JSON: ${(e as Error).message}`);
  }
}

export async function startControlApi(
  cluster: SimCluster,
  counted: CountingRequestLog,
  opts: ControlServerOptions = {},
): Promise<ControlServer> {
  const logger = opts.logger;

  async function route(req: IncomingMessage): Promise<unknown> {
    const { path, query } = pathAndQuery(req);
    const key = `${req.method} ${path.replace(/\/+$/, '') || '/'}`;
    switch (key) {
      case 'GET /healthz':
        return { ok: true };
      case 'GET /state': {
        if (query.node === undefined) return clusterState(cluster);
        const s = nodeState(cluster, query.node);
        if (!s) throw new ControlError(404, `unknown node ${query.node}`);
        return s;
      }
      case 'GET /requests':
        return requestsPage(counted, {
          ...(query.service ? { service: query.service } : {}),
          ...(intParam(query, 'since') !== undefined ? { since: intParam(query, 'since') } : {}),
          ...(intParam(query, 'limit') !== undefined ? { limit: intParam(query, 'limit') } : {}),
        });
      case 'GET /requests/count':
        return {
          total: counted.total(),
          byService: counted.byService(),
          unexpected: counted.unexpected.length,
        };
      case 'GET /process':
        return { pid: process.pid, cpu: process.cpuUsage(), rss: process.memoryUsage.rss() };
      case 'POST /faults': {
        const fault = parseJsonBody(await readBody(req, BODY_LIMIT));
        const kind = applyFault(cluster, fault);
        const node = (fault as { node: string }).node;
        logger?.info({ node, kind }, 'sim: fault injected');
        return { ok: true, node, kind };
      }
      case 'POST /clear':
        return { ok: true, node: applyClear(cluster, parseJsonBody(await readBody(req, BODY_LIMIT))) };
      case 'POST /counters':
        return { ok: true, ...applyCounters(cluster, parseJsonBody(await readBody(req, BODY_LIMIT))) };
      case 'POST /pdb':
        return { ok: true, ...applyPdb(cluster, parseJsonBody(await readBody(req, BODY_LIMIT))) };
      case 'POST /bedrock/answer': {
        if (!opts.bedrock) throw new ControlError(404, 'this simulator has no Bedrock fake');
        const parsed = BedrockAnswerRequest.safeParse(parseJsonBody(await readBody(req, BODY_LIMIT)));
        if (!parsed.success) throw new ControlError(400, describeIssues(parsed.error));
        const answer = parsed.data;
        opts.bedrock.script(() => answer);
        return { ok: true };
      }
      case 'POST /k8s/faults': {
        if (!opts.k8s) throw new ControlError(404, 'this simulator has no Kubernetes API server');
        const parsed = K8sFault.safeParse(parseJsonBody(await readBody(req, BODY_LIMIT)));
        if (!parsed.success) throw new ControlError(400, describeIssues(parsed.error));
        opts.k8s.faults.add(parsed.data);
        logger?.info({ fault: parsed.data }, 'sim: Kubernetes API fault queued');
        return { ok: true, pending: opts.k8s.faults.pending };
      }
      case 'DELETE /k8s/faults':
        opts.k8s?.faults.clear();
        return { ok: true };
      case 'POST /k8s/watches/drop':
        if (!opts.k8s) throw new ControlError(404, 'this simulator has no Kubernetes API server');
        return { ok: true, dropped: opts.k8s.dropWatches() };
      case 'POST /aws/faults': {
        if (!opts.aws) throw new ControlError(404, 'this simulator has no AWS fake');
        const parsed = AwsFaultRequest.safeParse(parseJsonBody(await readBody(req, BODY_LIMIT)));
        if (!parsed.success) throw new ControlError(400, describeIssues(parsed.error));
        const { service, ...fault } = parsed.data;
        opts.aws.faults.add(service, fault);
        logger?.info({ service, fault }, 'sim: AWS fault queued');
        return { ok: true };
      }
      case 'DELETE /aws/faults':
        opts.aws?.faults.clear();
        return { ok: true };
      case 'DELETE /bedrock/answer':
        opts.bedrock?.script(undefined);
        return { ok: true };
      case 'GET /bedrock/calls':
        return { calls: opts.bedrock?.calls.length ?? 0 };
      default:
        throw new ControlError(404, `no such control endpoint: ${req.method} ${path}`);
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const out = await route(req);
      send(res, 200, JSON_TYPE, JSON.stringify(out));
    } catch (e) {
      const err =
        e instanceof ControlError
          ? e
          : e instanceof BodyError
            ? new ControlError(e.status, e.message)
            : new ControlError(500, `simulator error: ${(e as Error).message}`);
      if (err.status >= 500) logger?.error({ err: e }, 'sim: control API failed');
      send(res, err.status, JSON_TYPE, JSON.stringify({ error: err.message }));
    }
  }

  const started = await listen((req, res) => {
    void handle(req, res);
  }, opts.port ?? 0);
  return { url: started.origin, close: () => started.close() };
}

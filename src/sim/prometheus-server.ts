/**
 * A Prometheus server over the simulated exporters: it scrapes every node's dcgm-exporter (the pod-discovery
 * targets: nodes with an exporter pod) every `scrapeIntervalMs`, keeps the latest sample of each series, and
 * answers the HTTP API's instant query (`/api/v1/query`, GET or POST) with the real response envelope.
 *
 * Stubborn like the real one:
 * - a failed scrape (exporter down, hanging, rebooting, garbled text) sets `up` to 0 and marks every series
 *   of that target stale: they vanish from queries at once; so do series missing from a newer scrape (an XID
 *   whose `err_code` label changed leaves its old series behind, stale);
 * - series not refreshed for 5 minutes (the lookback) are not returned either;
 * - targets get `instance` and `job` labels, as scrape configs add them;
 * - only the PromQL gpu-medic sends is evaluated (promql.ts); anything else is `bad_data`, HTTP 400;
 *   any other path is 404 and recorded as unexpected;
 * - with `sigv4Region` (an AMP workspace) requests not signed for `aps` in that region are refused (403);
 * - `setFault` makes it answer as broken servers and proxies do: hang, 503 text, partial (`warnings`),
 *   the wrong `resultType`, an execution error.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SimCluster } from './cluster.js';
import { headerRecord, listen, parseForm, pathAndQuery, readBody, send } from './http-util.js';
import type { KubeNode } from './k8s-objects.js';
import { evaluate, PromqlExecError, PromqlParseError, parsePromql, type SimSeries } from './promql.js';
import type { RequestLog } from './recorder.js';

export const PrometheusFaults = ['none', 'hang', 'unavailable', 'warnings', 'matrix', 'execution'] as const;
export type PrometheusFault = (typeof PrometheusFaults)[number];

export interface SimPrometheusOptions {
  log: RequestLog;
  /** Default 1 s. */
  scrapeIntervalMs?: number;
  /** Answer only SigV4 requests for service `aps` in this region (an AMP workspace). */
  sigv4Region?: string;
  now?: () => number;
}

export interface SimPrometheus {
  /** Base URL to put in PROMETHEUS_URL. */
  url: string;
  /** Scrapes every target now (a test's explicit step). */
  scrapeNow(): void;
  /** Resolves after the next scrape round that starts after this call. */
  nextScrape(): Promise<void>;
  setFault(fault: PrometheusFault): void;
  /** Queries answered so far. */
  queries(): string[];
  close(): Promise<void>;
}

const LOOKBACK_MS = 5 * 60_000;

interface Target {
  node: string;
  at: number;
  body?: string;
  byName: Map<string, SimSeries[]>;
}

/** Parses exposition text into series by name; undefined when a line is not valid (the scrape fails). */
function parseScrape(text: string, target: Record<string, string>): Map<string, SimSeries[]> | undefined {
  const byName = new Map<string, SimSeries[]>();
  // The series of one GPU share one labels object (all but the name are equal).
  const shared = new Map<string, Readonly<Record<string, string>>>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) return undefined;
    const name = m[1] as string;
    const labelText = m[3] ?? '';
    let labels = shared.get(labelText);
    if (!labels) {
      const parsed: Record<string, string> = {};
      const re = /\s*([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/y;
      let i = 0;
      while (i < labelText.length) {
        re.lastIndex = i;
        const l = re.exec(labelText);
        if (!l) return undefined;
        parsed[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
        i = re.lastIndex;
      }
      labels = Object.freeze({ ...parsed, ...target });
      shared.set(labelText, labels);
    }
    const raw = m[4] as string;
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    if (Number.isNaN(value) && raw !== 'NaN') return undefined;
    const list = byName.get(name);
    const s: SimSeries = { name, labels, value };
    if (list) list.push(s);
    else byName.set(name, [s]);
  }
  return byName;
}

/** Go's strconv.FormatFloat(v, 'f', -1, 64) for the values we produce. */
function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export async function startSimPrometheus(
  cluster: SimCluster,
  opts: SimPrometheusOptions,
): Promise<SimPrometheus> {
  const now = opts.now ?? Date.now;
  const targets = new Map<string, Target>();
  let fault: PrometheusFault = 'none';
  const answered: string[] = [];
  let waiters: Array<() => void> = [];
  const hanging = new Set<ServerResponse>();
  /** Metric names of the last scrape round (series() applies the lookback). */
  let names = new Set<string>();

  function scrapeNow(): void {
    const at = now();
    const seen = new Set<string>();
    // The live node objects (listNodes() copies every node: too slow every second at fleet scale).
    for (const node of cluster.store.list<KubeNode>('nodes')) {
      const name = node.metadata.name;
      const pod = cluster.exporterPod(name);
      if (!pod) continue;
      seen.add(name);
      const t: Target = targets.get(name) ?? { node: name, at, byName: new Map() };
      targets.set(name, t);
      const labels = { instance: `${pod.status.podIP ?? name}:9400`, job: 'gpu-metrics' };
      const scrape = cluster.exporterScrape(name);
      const parsed =
        scrape.kind === 'ok'
          ? scrape.body === t.body && t.byName.size > 0
            ? t.byName
            : parseScrape(scrape.body, labels)
          : undefined;
      if (parsed) {
        t.byName = parsed;
        t.body = scrape.kind === 'ok' ? scrape.body : undefined;
      } else {
        // Staleness markers for every series of the target; only `up` remains.
        t.byName = new Map();
        t.body = undefined;
      }
      t.byName.set('up', [{ name: 'up', labels, value: parsed ? 1 : 0 }]);
      t.at = at;
    }
    // A target gone from discovery (node deleted, exporter pod gone): its series go stale.
    for (const name of [...targets.keys()]) if (!seen.has(name)) targets.delete(name);
    names = new Set<string>();
    for (const t of targets.values()) for (const n of t.byName.keys()) names.add(n);
    const done = waiters;
    waiters = [];
    for (const w of done) w();
  }

  const source = {
    names: () => names,
    *series(name: string): Iterable<SimSeries> {
      const at = now();
      for (const t of targets.values()) {
        if (at - t.at > LOOKBACK_MS) continue;
        const list = t.byName.get(name);
        if (list) yield* list;
      }
    },
  };

  const json = (res: ServerResponse, status: number, body: unknown) =>
    send(res, status, 'application/json', JSON.stringify(body));

  function signedForAps(req: IncomingMessage, region: string): boolean {
    const auth = String(req.headers.authorization ?? '');
    return new RegExp(`^AWS4-HMAC-SHA256 Credential=[^/]+/\\d{8}/${region}/aps/aws4_request,`).test(auth);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { path, query } = pathAndQuery(req);
    const body = req.method === 'POST' ? await readBody(req) : '';
    const record = (status: number, operation?: string) => ({
      service: 'prometheus',
      method: req.method ?? 'GET',
      path,
      query,
      headers: headerRecord(req),
      body,
      ...(operation ? { operation } : {}),
      status,
      at: Date.now(),
    });
    if (path !== '/api/v1/query' || (req.method !== 'GET' && req.method !== 'POST')) {
      opts.log.recordUnexpected(record(404));
      send(res, 404, 'text/plain; charset=utf-8', '404 page not found\n');
      return;
    }
    if (opts.sigv4Region && !signedForAps(req, opts.sigv4Region)) {
      opts.log.record(record(403, 'query'));
      json(res, 403, { message: 'Missing Authentication Token' });
      return;
    }
    const form = { ...query, ...(req.method === 'POST' ? parseForm(body) : {}) };
    const q = form.query ?? '';
    answered.push(q);
    const at = form.time !== undefined ? Number(form.time) : now() / 1000;
    if (fault === 'hang') {
      opts.log.record(record(0, 'query'));
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
      return;
    }
    if (fault === 'unavailable') {
      opts.log.record(record(503, 'query'));
      send(res, 503, 'text/html', '<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>');
      return;
    }
    if (fault === 'execution') {
      opts.log.record(record(422, 'query'));
      json(res, 422, {
        status: 'error',
        errorType: 'execution',
        error: 'query processing would load too many samples into memory in query execution',
      });
      return;
    }
    if (q === '') {
      opts.log.record(record(400, 'query'));
      json(res, 400, {
        status: 'error',
        errorType: 'bad_data',
        error: 'invalid parameter "query": 1:1: parse error: no expression found in input',
      });
      return;
    }
    let result: SimSeries[];
    try {
      result = evaluate(parsePromql(q), source);
    } catch (err) {
      const status = err instanceof PromqlParseError ? 400 : err instanceof PromqlExecError ? 422 : 500;
      const errorType =
        err instanceof PromqlParseError
          ? 'bad_data'
          : err instanceof PromqlExecError
            ? 'execution'
            : 'internal';
      opts.log.record(record(status, 'query'));
      const message =
        err instanceof PromqlParseError
          ? `invalid parameter "query": ${err.message}`
          : (err as Error).message;
      json(res, status, { status: 'error', errorType, error: message });
      return;
    }
    const ts = Math.round(at * 1000) / 1000;
    const data =
      fault === 'matrix'
        ? {
            resultType: 'matrix',
            result: result.map((s) => ({ metric: metricOf(s), values: [[ts, formatValue(s.value)]] })),
          }
        : {
            resultType: 'vector',
            result: result.map((s) => ({ metric: metricOf(s), value: [ts, formatValue(s.value)] })),
          };
    opts.log.record(record(200, 'query'));
    json(res, 200, {
      status: 'success',
      data,
      ...(fault === 'warnings'
        ? { warnings: ['remote read of store "prometheus-1" failed: context deadline exceeded'] }
        : {}),
    });
  }

  const metricOf = (s: SimSeries) =>
    s.name === undefined ? { ...s.labels } : { __name__: s.name, ...s.labels };

  const server = await listen((req, res) => {
    handle(req, res).catch((err: Error) => {
      json(res, 500, { status: 'error', errorType: 'internal', error: err.message });
    });
  });
  scrapeNow();
  const timer = setInterval(scrapeNow, opts.scrapeIntervalMs ?? 1000);
  timer.unref();

  return {
    url: server.origin,
    scrapeNow,
    nextScrape: () => new Promise<void>((resolve) => waiters.push(resolve)),
    setFault(f) {
      fault = f;
      if (f !== 'hang') for (const r of hanging) r.destroy();
    },
    queries: () => [...answered],
    async close() {
      clearInterval(timer);
      for (const r of hanging) r.destroy();
      for (const w of waiters) w();
      waiters = [];
      await server.close();
    },
  };
}

/**
 * `POST /webhooks/alertmanager`: Alertmanager's webhook (JSON, version 4) as a trigger. Each firing alert
 * that names a GPU node makes gpu-medic scan that node now instead of at the next interval; the scan, not
 * the alert, decides whether there is a fault, so an alert about a healthy node opens nothing.
 *
 * Guarded by `Authorization: Bearer <ALERTMANAGER_TOKEN>` (compared in constant time) and a body limit;
 * the route exists only when a token is configured.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { GpuNode } from '../domain/node.js';
import type { NodeScanSummary } from '../monitor/monitor.js';

export const ALERTMANAGER_PATH = '/webhooks/alertmanager';
/** Alertmanager groups alerts (default max_alerts: unlimited); 1 MiB holds thousands of them. */
export const ALERTMANAGER_MAX_BODY_BYTES = 1024 * 1024;

/**
 * Alert labels that name a node, most specific first. `node` and `kubernetes_node` are what the usual
 * relabelling of kube-prometheus and the Prometheus Helm chart attach; dcgm-exporter itself labels every
 * series with the node name as `Hostname` (renamed `hostname` upstream in 2026); `instance` is the scrape
 * address (`host:port`), which names the node only when the exporter runs on the host network or the
 * target is the node itself.
 */
export const NODE_LABELS = ['node', 'kubernetes_node', 'Hostname', 'hostname', 'instance'] as const;

const labelSet = z.record(z.string(), z.string());

const alertSchema = z.object({
  status: z.enum(['firing', 'resolved']),
  labels: labelSet,
  annotations: labelSet.optional(),
  startsAt: z.string().optional(),
  endsAt: z.string().optional(),
  generatorURL: z.string().optional(),
  fingerprint: z.string().optional(),
});

export const alertmanagerPayloadSchema = z.object({
  version: z.literal('4', { error: 'expected "4" (Alertmanager webhook format version 4)' }),
  status: z.enum(['firing', 'resolved']),
  alerts: z.array(alertSchema).max(10_000),
  receiver: z.string().optional(),
  groupKey: z.string().optional(),
  truncatedAlerts: z.number().int().nonnegative().optional(),
  groupLabels: labelSet.optional(),
  commonLabels: labelSet.optional(),
  commonAnnotations: labelSet.optional(),
  externalURL: z.string().optional(),
});
export type AlertmanagerPayload = z.infer<typeof alertmanagerPayloadSchema>;

/** What one push asks for: the nodes to scan, and what could not be mapped. */
export interface AlertTargets {
  nodes: string[];
  /** Firing alerts whose node label names no known GPU node. */
  unknown: { alertname?: string; label: string; value: string }[];
  /** Resolved alerts: a cleared alert proves nothing about health; the next scan sees for itself. */
  resolved: number;
  /** Firing alerts without any node label. */
  unlabelled: number;
}

/** `host:port`, `[v6]:port` or a bare host → the host. */
function hostOf(instance: string): string {
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(instance);
  if (v6) return v6[1] as string;
  const colon = instance.lastIndexOf(':');
  return colon > 0 && instance.indexOf(':') === colon && /^\d+$/.test(instance.slice(colon + 1))
    ? instance.slice(0, colon)
    : instance;
}

/**
 * A pure mapping of a push's firing alerts onto GPU nodes: a label value is the node's name, its
 * `kubernetes.io/hostname` label or (for `instance`) its InternalIP. Each node appears once.
 */
export function alertTargets(payload: AlertmanagerPayload, nodes: readonly GpuNode[]): AlertTargets {
  const byName = new Map<string, string>();
  const byIp = new Map<string, string>();
  for (const n of nodes) {
    byName.set(n.name, n.name);
    const host = n.labels['kubernetes.io/hostname'];
    if (host && !byName.has(host)) byName.set(host, n.name);
    if (n.internalIp) byIp.set(n.internalIp, n.name);
  }
  const out: AlertTargets = { nodes: [], unknown: [], resolved: 0, unlabelled: 0 };
  const chosen = new Set<string>();
  for (const alert of payload.alerts) {
    if (alert.status === 'resolved') {
      out.resolved++;
      continue;
    }
    let found: string | undefined;
    let first: { label: string; value: string } | undefined;
    for (const label of NODE_LABELS) {
      const value = alert.labels[label]?.trim();
      if (!value) continue;
      first ??= { label, value };
      found =
        label === 'instance' ? (byName.get(hostOf(value)) ?? byIp.get(hostOf(value))) : byName.get(value);
      if (found) break;
    }
    if (found) {
      if (!chosen.has(found)) out.nodes.push(found);
      chosen.add(found);
    } else if (first) {
      const alertname = alert.labels.alertname;
      out.unknown.push({ ...(alertname ? { alertname } : {}), ...first });
    } else out.unlabelled++;
  }
  return out;
}

/** Constant-time comparison of a presented bearer token with the configured one (digests of equal length). */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = header ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header) : null;
  const presented = m?.[1] ?? '';
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b) && presented.length > 0;
}

/** One node's outcome of a pushed scan, as the response reports it. */
export interface PushedScan {
  node: string;
  severity: string;
  category: string;
  /** Incidents this scan opened (an already open incident is touched, not listed). */
  opened: string[];
  error?: string;
}

export interface AlertmanagerDeps {
  token: string;
  listNodes(): GpuNode[];
  /** Scans the named nodes now and reports each; the monitor's `scanNodes`. */
  scan(names: string[]): Promise<PushedScan[]>;
  /** False on a standby replica: only the leader scans and opens incidents. Default: always. */
  acting?(): boolean;
  maxBodyBytes?: number;
  logger?: Logger;
}

export type RequestHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

class BodyTooLarge extends Error {}

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new BodyTooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  if (res.headersSent) return;
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers }).end(`${JSON.stringify(body)}\n`);
}

/**
 * The handler: 401 without the token, 405 for another method, 413 over the size limit, 400 for a body
 * that is not Alertmanager's version-4 JSON, 503 on a standby replica (Alertmanager retries), else 200 with
 * what each named node's scan found. Concurrent pushes naming a node being scanned share that scan.
 */
export function createAlertmanagerHandler(deps: AlertmanagerDeps): RequestHandler {
  const limit = deps.maxBodyBytes ?? ALERTMANAGER_MAX_BODY_BYTES;
  const inFlight = new Map<string, Promise<PushedScan | undefined>>();

  const scanShared = (names: string[]): Promise<(PushedScan | undefined)[]> => {
    const fresh = names.filter((n) => !inFlight.has(n));
    if (fresh.length > 0) {
      const batch = deps.scan(fresh);
      for (const name of fresh) {
        const one = batch.then((all) => all.find((s) => s.node === name));
        inFlight.set(name, one);
        one.finally(() => inFlight.delete(name)).catch(() => undefined);
      }
    }
    return Promise.all(names.map((n) => inFlight.get(n) as Promise<PushedScan | undefined>));
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    if (req.method !== 'POST') {
      send(res, 405, { error: `${req.method} not allowed; Alertmanager POSTs here` }, { Allow: 'POST' });
      return;
    }
    if (!tokenMatches(req.headers.authorization, deps.token)) {
      req.resume();
      send(
        res,
        401,
        { error: 'missing or wrong bearer token (Authorization: Bearer <ALERTMANAGER_TOKEN>)' },
        { 'WWW-Authenticate': 'Bearer realm="gpu-medic"' },
      );
      return;
    }
    let raw: Buffer;
    try {
      raw = await readBody(req, limit);
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        send(res, 413, { error: `body larger than ${limit} bytes` }, { Connection: 'close' });
        return;
      }
      throw err;
    }
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      send(res, 400, { error: `body is not JSON: ${(err as Error).message}` });
      return;
    }
    const parsed = alertmanagerPayloadSchema.safeParse(json);
    if (!parsed.success) {
      const problems = parsed.error.issues
        .slice(0, 5)
        .map((i) => `${i.path.length > 0 ? `${i.path.join('.')}: ` : ''}${i.message}`);
      send(res, 400, { error: 'not an Alertmanager webhook payload (version 4)', problems });
      return;
    }
    if (deps.acting && !deps.acting()) {
      send(res, 503, { error: 'this replica is standing by; the leader scans' }, { 'Retry-After': '5' });
      return;
    }
    const targets = alertTargets(parsed.data, deps.listNodes());
    const scanned = targets.nodes.length > 0 ? await scanShared(targets.nodes) : [];
    const results = scanned.filter((s): s is PushedScan => s !== undefined);
    deps.logger?.info(
      {
        nodes: targets.nodes,
        opened: results.flatMap((r) => r.opened),
        unknown: targets.unknown.length,
        resolved: targets.resolved,
      },
      'alertmanager push scanned',
    );
    send(res, 200, {
      scanned: results,
      unknown: targets.unknown,
      ignored: { resolved: targets.resolved, unlabelled: targets.unlabelled },
    });
  };

  return (req, res) => {
    handle(req, res).catch((err) => {
      deps.logger?.error({ err }, 'alertmanager push failed');
      send(res, 500, { error: 'scan failed' });
    });
  };
}

/** What the route needs of the monitor. */
export interface ScanningMonitor {
  readonly isRunning: boolean;
  scanNodes(names: readonly string[]): Promise<{ report: { summaries: readonly NodeScanSummary[] } }>;
}

/**
 * The route as the servers mount it, or undefined (the path answers 404) when no token is configured.
 * The monitor runs only on the leader, so a standby answers 503 and Alertmanager retries.
 */
export function alertmanagerRoute(opts: {
  token: string | undefined;
  monitor: ScanningMonitor;
  listNodes(): GpuNode[];
  logger?: Logger;
}): RequestHandler | undefined {
  if (!opts.token) return undefined;
  const { monitor } = opts;
  return createAlertmanagerHandler({
    token: opts.token,
    listNodes: opts.listNodes,
    acting: () => monitor.isRunning,
    logger: opts.logger,
    async scan(names) {
      const { report } = await monitor.scanNodes(names);
      return report.summaries.map((s) => ({
        node: s.node.name,
        severity: s.verdict.severity,
        category: s.verdict.category,
        opened: s.opened.map((i) => i.id),
        ...(s.error ? { error: s.error.message } : {}),
      }));
    },
  });
}

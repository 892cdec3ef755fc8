import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { SimCluster } from './cluster.js';
import { coreRoutes } from './k8s-core-routes.js';
import { defaultFaultMessage, K8sFaults, type K8sFaultTarget, reasonFor } from './k8s-faults.js';
import { groupRoutes } from './k8s-group-routes.js';
import {
  type Ctx,
  JSON_TYPE,
  type K8sContext,
  type K8sRecordedRequest,
  type Route,
  readBody,
  send,
  sendError,
  statusBody,
} from './k8s-http.js';
import { RequestLog } from './recorder.js';
import { ApiError } from './resource-store.js';

/**
 * A subset of the Kubernetes API server over plain HTTP (or HTTPS with `tls`), backed by a SimCluster: real REST paths, JSON
 * bodies, resourceVersions, watch streams, `Status` errors. @kubernetes/client-node runs against it
 * unmodified (kubeconfig from kubeconfig.ts). The routes live in `k8s-core-routes.ts` (discovery, nodes,
 * pods, the exporter proxy) and `k8s-group-routes.ts` (leases, PDBs, NodeClaims, training jobs), over
 * the lists and watches of `k8s-lists.ts`; this module authenticates, records, injects faults and routes.
 *
 * Exec and other upgrade subresources are not served here: attach an `'upgrade'` listener to the
 * returned `server` (node http.Server) to add them; this module never listens for upgrades itself.
 */

// The simulator's Kubernetes surface, as importers have always reached it.
export { decodeContinue, encodeContinue, type K8sRecordedRequest, statusBody } from './k8s-http.js';

export interface SimK8sOptions {
  port?: number;
  host?: string;
  log?: RequestLog;
  logger?: Logger;
  /** The bearer token the kubeconfig carries: any other (or none) is answered 401, as a real API server does. */
  token?: string;
  faults?: K8sFaults;
  /** Serve HTTPS with this certificate (PEM), as EKS does; the kubeconfig then carries the issuing CA. */
  tls?: { cert: string; key: string };
}

export interface SimK8sServer {
  url: string;
  server: Server;
  log: RequestLog;
  /** Faults to serve next (500, 429 + Retry-After, 409, 410 on a watch, a dropped watch, 401 …). */
  faults: K8sFaults;
  /** Cuts every open watch stream now (an API server restart, a load balancer timeout); returns how many. */
  dropWatches(): number;
  close(): Promise<void>;
}

export async function startSimK8s(cluster: SimCluster, opts: SimK8sOptions = {}): Promise<SimK8sServer> {
  const log = opts.log ?? new RequestLog();
  const logger = opts.logger;
  const streams = new Set<ServerResponse>();
  const watches = new Set<ServerResponse>();
  const faults = opts.faults ?? new K8sFaults();
  const ctx: K8sContext = { cluster, streams, watches };
  // Tried in order: the first route whose path and method match serves the request.
  const routes: Route[] = [...coreRoutes(ctx), ...groupRoutes(ctx)];

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim');
    const method = req.method ?? 'GET';
    const rec: K8sRecordedRequest = {
      service: 'k8s',
      method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      body: '',
      status: 0,
      at: Date.now(),
      verb: method.toLowerCase(),
    };
    let recorded = false;
    res.on('finish', () => {
      if (recorded) return;
      recorded = true;
      rec.status = res.statusCode;
      log.record(rec);
    });
    try {
      rec.body = method === 'GET' || method === 'HEAD' ? '' : await readBody(req);
      // kube-apiserver authenticates before anything else: a missing, wrong or expired token is a 401.
      const authenticated = opts.token === undefined || req.headers.authorization === `Bearer ${opts.token}`;
      const unauthorized = () => send(res, 401, statusBody(401, 'Unauthorized', 'Unauthorized'));
      let pathMatched = false;
      for (const r of routes) {
        const m = r.pattern.exec(url.pathname);
        if (!m) continue;
        pathMatched = true;
        if (r.method !== method) continue;
        const params = m.slice(1).map((p) => (p === undefined ? '' : decodeURIComponent(p)));
        rec.operation = r.operation;
        rec.verb = r.verb;
        if (r.resource !== undefined) rec.resource = r.resource;
        if (r.subresource !== undefined) rec.subresource = r.subresource;
        if (r.apiGroup !== undefined) rec.apiGroup = r.apiGroup;
        if (r.ns !== undefined) rec.namespace = params[r.ns];
        if (r.name !== undefined) rec.name = params[r.name];
        const recordNow = (status: number): void => {
          recorded = true;
          rec.status = status;
          log.record(rec);
        };
        if (!authenticated) {
          unauthorized();
          return;
        }
        const c: Ctx = { req, res, query: url.searchParams, body: rec.body, params, rec, recordNow };
        const isWatch = r.verb === 'list' && ['true', '1'].includes(url.searchParams.get('watch') ?? '');
        const target: K8sFaultTarget = {
          operation: isWatch ? r.operation.replace(/^list/, 'watch') : r.operation,
          verb: isWatch ? 'watch' : r.verb,
          path: url.pathname,
        };
        const fault = faults.pending > 0 ? faults.take(target) : undefined;
        if (fault?.status !== undefined) {
          serveFault(c, target, fault.status, isWatch, fault.retryAfterSeconds, fault.message);
          return;
        }
        r.handle(c);
        // A dropped watch: the current objects went out, then the connection is cut mid-stream.
        if (fault?.drop && isWatch) setImmediate(() => res.destroy());
        return;
      }
      if (!authenticated) {
        unauthorized();
        return;
      }
      const status = pathMatched ? 405 : 404;
      rec.status = status;
      log.recordUnexpected(rec);
      recorded = true;
      logger?.warn({ method, path: url.pathname }, 'sim k8s: unexpected request');
      send(
        res,
        status,
        pathMatched
          ? statusBody(
              405,
              'MethodNotAllowed',
              `the server does not allow this method on the requested resource`,
            )
          : statusBody(404, 'NotFound', 'the server could not find the requested resource'),
      );
    } catch (e) {
      if (e instanceof ApiError) sendError(res, e);
      else {
        logger?.error({ err: e, path: url.pathname }, 'sim k8s: handler failed');
        send(res, 500, statusBody(500, 'InternalError', `internal error: ${(e as Error).message}`));
      }
    }
  }

  /** Answers with an injected fault, in the shape a real API server uses for that code. */
  function serveFault(
    c: Ctx,
    target: K8sFaultTarget,
    status: number,
    isWatch: boolean,
    retryAfterSeconds: number | undefined,
    message: string | undefined,
  ): void {
    c.rec.verb = target.verb;
    if (target.operation) c.rec.operation = target.operation;
    const text = message ?? defaultFaultMessage(status, target);
    if (isWatch && status === 410) {
      // An expired resourceVersion on a watch: the stream opens (200) and carries one ERROR event.
      c.res.writeHead(200, { 'Content-Type': JSON_TYPE, 'Transfer-Encoding': 'chunked' });
      c.res.end(`{"type":"ERROR","object":${statusBody(410, 'Expired', text)}}\n`);
      return;
    }
    const details = retryAfterSeconds !== undefined ? { retryAfterSeconds } : undefined;
    c.res.statusCode = status;
    c.res.setHeader('Content-Type', JSON_TYPE);
    if (retryAfterSeconds !== undefined) c.res.setHeader('Retry-After', String(retryAfterSeconds));
    c.res.end(statusBody(status, reasonFor(status), text, details));
  }

  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    void handle(req, res);
  };
  // An https.Server is an http.Server (tls.Server underneath): exec upgrades attach to it the same way.
  const server: Server = opts.tls
    ? (createHttpsServer({ keepAlive: true, cert: opts.tls.cert, key: opts.tls.key }, listener) as Server)
    : createServer({ keepAlive: true }, listener);
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `${opts.tls ? 'https' : 'http'}://${opts.host ?? '127.0.0.1'}:${port}`;
  return {
    url,
    server,
    log,
    faults,
    dropWatches: () => {
      const n = watches.size;
      for (const w of [...watches]) {
        watches.delete(w);
        streams.delete(w);
        w.destroy();
      }
      return n;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of streams) s.destroy();
        streams.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

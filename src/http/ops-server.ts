import http from 'node:http';
import type { Logger } from 'pino';
import { ALERTMANAGER_PATH, type RequestHandler } from './alertmanager.js';

export interface OpsRoutes {
  /** Liveness: the process is not wedged. */
  healthy(): boolean;
  /** Readiness: store open and the node watch synced. */
  ready(): boolean;
  /** `/metrics` (Prometheus exposition); 404 when omitted. */
  metrics?(): Promise<{ contentType: string; body: string }>;
  /** `POST /webhooks/alertmanager` (http/alertmanager.ts); absent → 404. */
  alertmanager?: RequestHandler;
}

/** Answers one ops request; false when the path is not an ops route (the caller answers it). */
export type OpsHandler = (req: http.IncomingMessage, res: http.ServerResponse) => boolean;

/**
 * `/healthz`, `/readyz` and `/metrics`: the one answer of both modes, served by the ops server or, in
 * Slack HTTP mode, by the Bolt receiver (which owns PORT then).
 */
export function handleOps(
  routes: OpsRoutes,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  logger?: Logger,
): boolean {
  const path = (req.url ?? '/').split('?')[0];
  if (path === ALERTMANAGER_PATH && routes.alertmanager) {
    routes.alertmanager(req, res);
    return true;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  if (path === '/healthz' || path === '/readyz') {
    const ok = path === '/healthz' ? routes.healthy() : routes.ready();
    res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' }).end(ok ? 'ok\n' : 'not ready\n');
    return true;
  }
  if (path === '/metrics' && routes.metrics) {
    routes.metrics().then(
      ({ contentType, body }) => res.writeHead(200, { 'Content-Type': contentType }).end(body),
      (err) => {
        logger?.error({ err }, 'rendering metrics failed');
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end('metrics unavailable\n');
      },
    );
    return true;
  }
  return false;
}

export function opsHandler(routes: OpsRoutes, logger?: Logger): OpsHandler {
  return (req, res) => handleOps(routes, req, res, logger);
}

export function startOpsServer(routes: OpsRoutes, port: number, logger?: Logger): Promise<http.Server> {
  const handle = opsHandler(routes, logger);
  const server = http.createServer((req, res) => {
    if (!handle(req, res)) res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => resolve(server));
  });
}

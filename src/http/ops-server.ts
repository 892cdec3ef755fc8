import http from 'node:http';
import type { Logger } from 'pino';
import { ALERTMANAGER_PATH, type RequestHandler } from './alertmanager.js';

export interface OpsRoutes {
  /** Liveness: the process is not wedged. */
  healthy(): boolean;
  /** Readiness: store open and the node watch synced. */
  ready(): boolean;
  metrics(): Promise<{ contentType: string; body: string }>;
  /** `POST /webhooks/alertmanager` (http/alertmanager.ts); absent → 404. */
  alertmanager?: RequestHandler;
}

/** `/healthz`, `/readyz` and `/metrics`, for when no Slack HTTP receiver serves them. */
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
  if (req.method !== 'GET') return false;
  if (path === '/healthz' || path === '/readyz') {
    const ok = path === '/healthz' ? routes.healthy() : routes.ready();
    res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' }).end(ok ? 'ok\n' : 'not ready\n');
    return true;
  }
  if (path === '/metrics') {
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

export function startOpsServer(routes: OpsRoutes, port: number, logger?: Logger): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (!handleOps(routes, req, res, logger))
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => resolve(server));
  });
}

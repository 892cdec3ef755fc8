/**
 * The simulated exporters as plain HTTP endpoints, for a real Prometheus to scrape (the interop test): one
 * loopback server, each node's `/metrics` at `/nodes/<node>/metrics`, answering what a scrape of that node's
 * dcgm-exporter gets right now (cluster.exporterScrape: down, hanging and garbled exporters included).
 */
import type { ServerResponse } from 'node:http';
import type { SimCluster } from './cluster.js';
import { listen, pathAndQuery, send } from './http-util.js';

export interface ExporterTarget {
  node: string;
  /** host:port for a static scrape config. */
  address: string;
  metricsPath: string;
}

export interface ExporterEndpoints {
  /** One target per node that runs an exporter now. */
  targets(): ExporterTarget[];
  close(): Promise<void>;
}

const EXPOSITION_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export async function startExporterEndpoints(cluster: SimCluster): Promise<ExporterEndpoints> {
  const hanging = new Set<ServerResponse>();
  const server = await listen((req, res) => {
    const { path } = pathAndQuery(req);
    const m = /^\/nodes\/([^/]+)\/metrics$/.exec(path);
    const node = m?.[1];
    if (!node || !cluster.getNode(node)) {
      send(res, 404, 'text/plain; charset=utf-8', '404 page not found\n');
      return;
    }
    const scrape = cluster.exporterScrape(node);
    if (scrape.kind === 'hang') {
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
      return;
    }
    if (scrape.kind === 'error') {
      // The exporter is not listening: the connection is refused / reset, not answered.
      res.socket?.destroy();
      return;
    }
    send(res, 200, EXPOSITION_TYPE, scrape.body);
  });
  const address = server.origin.replace(/^http:\/\//, '');
  return {
    targets() {
      return cluster
        .listNodes()
        .map((n) => n.metadata?.name ?? '')
        .filter((name) => cluster.exporterPod(name) !== undefined)
        .map((node) => ({ node, address, metricsPath: `/nodes/${node}/metrics` }));
    },
    async close() {
      for (const r of hanging) r.destroy();
      await server.close();
    },
  };
}

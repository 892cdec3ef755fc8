import type { ExporterScrape, NodeState } from './cluster-types.js';
import { type CounterSet, renderExporterMetrics } from './dcgm-exporter.js';
import { DCGM_EXPORTER_PORT } from './workloads.js';

/** The node's exporter text, rendered once per GPU change (the cluster clears `s.exposition` on a change). */
export function exposition(s: NodeState, defaultCounters: CounterSet): string {
  s.exposition ??= renderExporterMetrics(s.name, s.gpus, { counters: s.counters ?? defaultCounters });
  return s.exposition;
}

/**
 * What a scrape of the node's dcgm-exporter gets right now: no route while the node reboots, a refused
 * connection while the restarted container starts or when the exporter errors, a hang, a garbled body, 404
 * without an exporter, else the metrics.
 */
export function exporterScrape(s: NodeState, defaultCounters: CounterSet): ExporterScrape {
  if (s.rebooting)
    return {
      kind: 'error',
      status: 503,
      message: `error trying to reach service: dial tcp ${s.ip}:${DCGM_EXPORTER_PORT}: connect: no route to host`,
    };
  // The restarted container has not started listening yet (init containers, then the exporter's own start).
  if (s.agentsStarting && s.exporterMode !== 'missing')
    return {
      kind: 'error',
      status: 503,
      message: `error trying to reach service: dial tcp ${s.ip}:${DCGM_EXPORTER_PORT}: connect: connection refused`,
    };
  switch (s.exporterMode) {
    case 'hang':
      return { kind: 'hang' };
    case 'error':
      return {
        kind: 'error',
        status: 503,
        message: `error trying to reach service: dial tcp ${s.ip}:${DCGM_EXPORTER_PORT}: connect: connection refused`,
      };
    case 'missing':
      return { kind: 'error', status: 404, message: 'no dcgm-exporter on this node' };
    case 'garbage': {
      const text = exposition(s, defaultCounters);
      return {
        kind: 'garbage',
        body: `${text.slice(0, Math.floor(text.length / 3))}\u0000\u0001{{{ garbled 0x7f\nDCGM_FI_DEV_GPU_TEMP{gpu="0" 2x\n`,
      };
    }
    default:
      return { kind: 'ok', body: exposition(s, defaultCounters) };
  }
}

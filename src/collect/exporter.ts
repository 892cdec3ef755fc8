import type { GpuSample, SignalFamily } from '../domain/gpu.js';
import type { GpuNode } from '../domain/node.js';
import { baseSnapshot, type Collector, collectionError } from './collector.js';
import { exporterReader, gpusFromExporter } from './parse/exporter.js';
import { ExpositionParser, parsePrometheus } from './parse/prometheus.js';

/** Where one node's exporter text comes from (the API-server pod proxy, or the pod IP). */
export interface MetricsSource {
  /** The exposition text; rejects with CollectError('no-exporter') when the node has no exporter pod. */
  fetch(node: GpuNode, signal: AbortSignal): Promise<string>;
  /**
   * The same text in chunks as it arrives, when the source can stream (rejects like `fetch`): the
   * collector then parses while it reads and never holds the whole payload (at 5,000 nodes, the peak RSS).
   */
  stream?(node: GpuNode, signal: AbortSignal, onChunk: (chunk: Buffer) => void): Promise<void>;
}

export interface ExporterCollectorOptions {
  source: MetricsSource;
  maxBytes?: number;
  now?: () => number;
}

/**
 * Label values are slices of the scrape text, and V8 keeps a slice's whole parent alive: one UUID in a
 * snapshot would pin its node's ~90 KB scrape, 450 MB for a 5,000-node scan (measured by the bench).
 * Copying every string into a fresh one lets the scrape text be collected as soon as it is parsed.
 * parsePrometheus already detaches label values (once per distinct label set), so the collector does
 * not need this; it stays for other parsers' output.
 */
export function detachStrings<T>(value: T): T {
  if (typeof value === 'string') return (value.length > 12 ? ` ${value}`.slice(1) : value) as T;
  if (Array.isArray(value)) return value.map(detachStrings) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = detachStrings(v);
    return out as T;
  }
  return value;
}

/**
 * The exporter's GPUs and how many samples it sent. A streaming source is parsed as it arrives, each
 * sample folded into its GPU at once: no payload string, no sample list (the 5,000-node peak RSS).
 */
async function readExporter(
  opts: ExporterCollectorOptions,
  node: GpuNode,
  signal: AbortSignal,
): Promise<{ gpus: GpuSample[]; signals: SignalFamily[]; samples: number }> {
  const { source } = opts;
  if (!source.stream) {
    const parsed = parsePrometheus(await source.fetch(node, signal), { maxBytes: opts.maxBytes });
    // Label values come out of the parser detached from the scrape text (see detachStrings).
    return { ...gpusFromExporter(parsed), samples: parsed.samples.length };
  }
  const reader = exporterReader();
  const parser = new ExpositionParser({ maxBytes: opts.maxBytes, onSample: reader.add });
  await source.stream(node, signal, (chunk) => parser.write(chunk));
  parser.end();
  return { ...reader.finish(), samples: reader.count };
}

/** dcgm-exporter → NodeSnapshot. Parse problems on single lines are tolerated; unreadable text is an error. */
export function createExporterCollector(opts: ExporterCollectorOptions): Collector {
  const now = opts.now ?? Date.now;
  return {
    source: 'exporter',
    async collect(node, signal) {
      const snapshot = baseSnapshot(node, 'exporter', now());
      try {
        const { gpus, signals, samples } = await readExporter(opts, node, signal);
        snapshot.gpus = gpus;
        if (gpus.length > 0) snapshot.signals = signals;
        if (gpus.length === 0 && samples > 0) {
          snapshot.error = {
            kind: 'parse',
            message: 'the exporter answered but reported no GPU (no `gpu` label)',
          };
        } else if (samples === 0) {
          snapshot.error = { kind: 'parse', message: 'the exporter answered with no samples' };
        }
      } catch (error) {
        snapshot.error = collectionError(error);
      }
      return snapshot;
    },
  };
}

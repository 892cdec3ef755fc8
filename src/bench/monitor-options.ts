/**
 * The Monitor every bench harness measures, configured as the product's loop runs it (core.ts): the config's
 * concurrency and per-node deadline, snapshots not held to the scan's end. `intervalMs` 0: the harness calls
 * `scanOnce` itself.
 */
import type { Logger } from 'pino';
import { initialPlan, type Sensing } from '../app/sensing.js';
import type { Config } from '../config/config.js';
import type { MonitorOptions, MonitorStore } from '../monitor/monitor.js';

export function benchMonitorOptions(
  config: Config,
  sensing: Sensing,
  store: MonitorStore,
  logger: Logger,
): MonitorOptions {
  return {
    listNodes: () => sensing.watcher.list(),
    collector: sensing.collector,
    classifier: sensing.classifier,
    store,
    plan: initialPlan(config),
    intervalMs: 0,
    concurrency: config.monitor.scanConcurrency,
    nodeTimeoutMs: config.monitor.scanTimeoutSeconds * 1000,
    retainSnapshots: false,
    logger,
  };
}

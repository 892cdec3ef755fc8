import { parseArgs } from 'node:util';
import pino from 'pino';
import { createSensing, monitorTimings } from '../app/sensing.js';
import { formatVerdictTable, verdictToJson } from '../classify/format.js';
import { createLogger } from '../log/logger.js';
import { Monitor } from '../monitor/monitor.js';
import { configOrExit } from './load-config.js';

/** `gpu-medic scan [--json]`: one read-only pass over every GPU node of the current cluster. */
export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false } } });
  const config = configOrExit();
  // Logs (the coverage warning, unreadable nodes) go to stderr: stdout is the table or the JSON rows.
  const logger = createLogger({
    level: config.log.level === 'info' ? 'warn' : config.log.level,
    destination: pino.destination({ fd: 2, sync: true }),
  });
  const sensing = createSensing(config, { logger });
  await sensing.start();
  try {
    const monitor = new Monitor({
      listNodes: () => sensing.watcher.list(),
      collector: sensing.collector,
      classifier: sensing.classifier,
      plan: () => ({ plannedAction: 'none', mode: 'off' }),
      readOnly: true,
      // The table needs verdicts and timings only.
      retainSnapshots: false,
      ...monitorTimings(config),
      logger,
    });
    const report = await monitor.scanOnce();
    const rows = [...report.summaries].sort((a, b) => a.node.name.localeCompare(b.node.name));
    if (values.json) {
      for (const r of rows)
        console.log(JSON.stringify({ ...verdictToJson(r.node.name, r.verdict), ms: Math.round(r.ms) }));
    } else {
      console.log(formatVerdictTable(rows.map((r) => ({ input: r.node.name, verdict: r.verdict }))));
      console.log(
        `\n${rows.length} GPU nodes scanned in ${Math.round(report.durationMs)} ms; ${report.failures} could not be read.`,
      );
    }
    return 0;
  } finally {
    await sensing.stop();
  }
}

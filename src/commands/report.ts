import { parseArgs } from 'node:util';
import { repairCsv, repairJson } from '../remediate/repair-report.js';
import { openStoreFor } from '../store/index.js';
import { CliError } from './cli-error.js';
import { configOrExit } from './load-config.js';

const UNIT_MS: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000 };

/** `30d`, `12h`, `90m` → milliseconds; a clear error for anything else. */
export function parseSince(text: string): number {
  const m = /^(\d+)([dhm])$/.exec(text.trim());
  const unit = m ? UNIT_MS[m[2] ?? ''] : undefined;
  if (!m || unit === undefined || Number(m[1]) <= 0) {
    throw new CliError(`--since ${text}: give a duration such as 30d, 12h or 90m`, 2);
  }
  return Number(m[1]) * unit;
}

export interface ReportIo {
  env?: NodeJS.ProcessEnv;
  now?: () => number;
  write?: (text: string) => void;
}

/**
 * `gpu-medic report [--since 30d] [--format csv|json]`: the repair records (RMA evidence) from the store
 * at DB_PATH, one row per GPU and repair, on stdout. Read-only: the running bot may keep writing the file.
 */
export async function main(argv: string[], io: ReportIo = {}): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      since: { type: 'string', default: '30d' },
      format: { type: 'string', default: 'csv' },
    },
  });
  const format = values.format;
  if (format !== 'csv' && format !== 'json') {
    throw new CliError(`--format ${format}: choose csv or json`, 2);
  }
  const sinceMs = parseSince(values.since);
  const config = configOrExit(io.env ?? process.env);
  const now = io.now ?? Date.now;
  const store = openStoreFor(config.store);
  try {
    const records = store.repairs.listSince(now() - sinceMs);
    const write = io.write ?? ((text: string) => process.stdout.write(text));
    write(format === 'json' ? repairJson(records) : repairCsv(records));
    return 0;
  } finally {
    store.close();
  }
}

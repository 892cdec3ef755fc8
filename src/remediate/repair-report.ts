/**
 * The repair report (`gpu-medic report`, `/gpu report`): repair records as CSV (RFC 4180: a header, CRLF
 * line ends, a field quoted when it holds a comma, a quote or a line break, quotes doubled), as JSON, or as
 * a few lines of text for a chat without files.
 */
import type { RepairRecord } from '../domain/repair-record.js';

const iso = (ms: number) => new Date(ms).toISOString();

/** The columns, in order: what a support case needs first (instance, GPU), then the fault and the times. */
const COLUMNS: readonly [string, (r: RepairRecord) => string][] = [
  ['ended_at', (r) => iso(r.endedAt)],
  ['incident', (r) => r.incidentId],
  ['action', (r) => r.action],
  ['outcome', (r) => r.outcome],
  ['node', (r) => r.node],
  ['instance_id', (r) => r.instanceId ?? ''],
  ['instance_type', (r) => r.instanceType ?? ''],
  ['zone', (r) => r.zone ?? ''],
  ['gpu_index', (r) => (r.gpuIndex === undefined ? '' : String(r.gpuIndex))],
  ['gpu_uuid', (r) => r.gpuUuid ?? ''],
  ['gpu_serial', (r) => r.gpuSerial ?? ''],
  ['pci_bus_id', (r) => r.pciBusId ?? ''],
  ['faulty_gpu', (r) => (r.faulty ? 'yes' : 'no')],
  ['fault', (r) => r.faultKey],
  ['category', (r) => r.category],
  ['xids', (r) => r.xids.join(' ')],
  ['diag_level', (r) => r.diagLevel ?? ''],
  ['diag', (r) => r.diag.map((d) => `${d.test}: ${d.status}${d.info ? ` (${d.info})` : ''}`).join('; ')],
  ['detected_at', (r) => iso(r.detectedAt)],
  ['started_at', (r) => iso(r.startedAt)],
  ['reason', (r) => r.reason ?? ''],
];

/** One CSV field, quoted only when it must be. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

export function repairCsv(records: readonly RepairRecord[]): string {
  const lines = [COLUMNS.map(([name]) => name), ...records.map((r) => COLUMNS.map(([, get]) => get(r)))];
  return `${lines.map((fields) => fields.map(csvField).join(',')).join('\r\n')}\r\n`;
}

export function repairJson(records: readonly RepairRecord[]): string {
  return `${JSON.stringify(records, null, 2)}\n`;
}

/** A few lines for a chat: counts per action and outcome, then the faulty GPUs (at most `limit`). */
export function repairSummary(records: readonly RepairRecord[], days: number, limit = 10): string {
  const repairs = new Map<string, RepairRecord>();
  for (const r of records) if (r.faulty || !repairs.has(r.incidentId)) repairs.set(r.incidentId, r);
  if (repairs.size === 0) return `No GPU repairs in the last ${days} days.`;
  const counts = new Map<string, number>();
  for (const r of repairs.values())
    counts.set(`${r.action} ${r.outcome}`, (counts.get(`${r.action} ${r.outcome}`) ?? 0) + 1);
  const head = `${repairs.size} GPU repair${repairs.size === 1 ? '' : 's'} in the last ${days} days (${[
    ...counts,
  ]
    .map(([k, n]) => `${n} ${k}`)
    .join(', ')}):`;
  const lines = [...repairs.values()].slice(-limit).map((r) => {
    const gpu = r.gpuIndex === undefined ? 'node' : `GPU ${r.gpuIndex}${r.gpuUuid ? ` ${r.gpuUuid}` : ''}`;
    return `• ${iso(r.endedAt).slice(0, 16)}Z ${r.action} ${r.outcome}: ${r.node} (${r.instanceId ?? 'no instance id'}, ${r.instanceType ?? '?'}, ${r.zone ?? '?'}) ${gpu} — ${r.faultKey}${r.xids.length > 0 ? ` XID ${r.xids.join(', ')}` : ''}`;
  });
  const more =
    repairs.size > limit
      ? [`…and ${repairs.size - limit} earlier; \`gpu-medic report\` lists them all.`]
      : [];
  return [head, ...lines, ...more].join('\n');
}

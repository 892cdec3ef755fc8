/**
 * Repair records from the journal: when a remediation ends, what it did to which GPU (domain RepairRecord).
 * Pure: the caller hands the incident and its journal rows as stored (raw details, so rows of steps this
 * version does not know — `reset`, `diagnose` — are read by field, leniently).
 */
import { z } from 'zod';
import type { Incident } from '../domain/incident.js';
import type { RepairDiagResult, RepairRecord } from '../domain/repair-record.js';
import { GpuIdentityRecord } from './journal.js';

/** Where the repair records go, and how the report reads them back. */
export interface RepairRecordStore {
  /** Writes the records of one repair; writing the same incident's records again replaces them. */
  save(records: readonly RepairRecord[]): void;
  /** Records whose repair ended at or after `since`, oldest first. */
  listSince(since: number): RepairRecord[];
}

/** The actions that repair a GPU and so leave a record. */
export const RepairActions = ['reset', 'reboot', 'replace'] as const;

/** A journal row as stored: its step name and its detail, unchecked. */
export interface RawJournalRow {
  step: string;
  status: string;
  startedAt: number;
  finishedAt?: number;
  detail?: Record<string, unknown>;
}

const Plan = z.object({ action: z.string().optional() });
const Cordon = z.object({
  gpuIds: z.array(GpuIdentityRecord).optional().catch(undefined),
  zone: z.string().optional().catch(undefined),
});
const InstanceRow = z.object({
  instanceId: z.string().optional().catch(undefined),
  instanceType: z.string().optional().catch(undefined),
});
const DiagRow = z.object({
  level: z.union([z.number(), z.string()]).optional().catch(undefined),
  results: z
    .array(
      z.object({
        test: z.string(),
        gpu: z.union([z.number(), z.string()]).optional(),
        status: z.enum(['pass', 'fail', 'warn', 'skip']),
        info: z.string().optional(),
      }),
    )
    .optional()
    .catch(undefined),
});

const lastRow = (rows: readonly RawJournalRow[], step: string) => rows.findLast((r) => r.step === step);

function parsed<T>(schema: z.ZodType<T>, row: RawJournalRow | undefined): T | undefined {
  const r = schema.safeParse(row?.detail ?? {});
  return r.success ? r.data : undefined;
}

export interface RepairEnd {
  incident: Incident;
  rows: readonly RawJournalRow[];
  /** The end event's step (resolved, escalated, failed, cancelled) and time. */
  outcome: string;
  endedAt: number;
  reason?: string;
}

/**
 * The records of a remediation that ended: none unless its action repairs a GPU and the repair step itself
 * began (a run cancelled during the drain repaired nothing). One record for the GPU the fault names, plus one
 * per other GPU the scan saw with an XID or a diagnostic that did not pass; for a fault that names no GPU,
 * one per GPU the last scan read (or one node-level record when none was read).
 */
export function repairRecordsOf(end: RepairEnd): RepairRecord[] {
  const { incident, rows } = end;
  const action = parsed(Plan, lastRow(rows, 'plan'))?.action ?? incident.plannedAction;
  if (!RepairActions.some((a) => a === action)) return [];
  const repairRow = lastRow(rows, action);
  if (!repairRow) return [];
  const cordonRow = lastRow(rows, 'cordon');
  const cordon = parsed(Cordon, cordonRow) ?? {};
  const inst = parsed(InstanceRow, repairRow) ?? {};
  const diag = parsed(DiagRow, lastRow(rows, 'diagnose')) ?? {};
  const results = diag.results ?? [];
  const diagOf = (index: number | undefined): RepairDiagResult[] =>
    results
      .filter((r) => r.gpu === undefined || String(r.gpu) === String(index) || r.gpu === 'all')
      .map((r) => ({ test: r.test, status: r.status, ...(r.info ? { info: r.info } : {}) }));
  const gpus = cordon.gpuIds ?? [];
  const implicated = gpus.filter(
    (g) =>
      g.index === incident.gpu ||
      incident.gpu === undefined ||
      (g.xids?.length ?? 0) > 0 ||
      diagOf(g.index).some((d) => d.status === 'fail' || d.status === 'warn'),
  );
  const base = {
    incidentId: incident.id,
    action,
    node: incident.node,
    ...optional('instanceId', inst.instanceId ?? incident.instanceId),
    ...optional('instanceType', inst.instanceType ?? incident.instanceType),
    ...optional('zone', cordon.zone),
    faultKey: incident.faultKey,
    category: incident.category,
    ...optional('diagLevel', diag.level !== undefined ? String(diag.level) : undefined),
    detectedAt: incident.firstSeen,
    startedAt: cordonRow?.startedAt ?? repairRow.startedAt,
    endedAt: end.endedAt,
    outcome: end.outcome,
    ...optional('reason', end.reason),
  };
  const faultyKnown = incident.gpu !== undefined && implicated.some((g) => g.index === incident.gpu);
  const records: RepairRecord[] = implicated.map((g) => ({
    ...base,
    gpuIndex: g.index,
    ...optional('gpuUuid', g.uuid),
    ...optional('gpuSerial', g.serial),
    ...optional('pciBusId', g.pciBusId),
    xids: mergeXids(g.xids, g.index === incident.gpu ? incident.xid : undefined),
    faulty: g.index === incident.gpu,
    diag: diagOf(g.index),
  }));
  // The faulty GPU has a record even when no scan named it (its identity is then unknown).
  if (!faultyKnown && (incident.gpu !== undefined || records.length === 0)) {
    records.unshift({
      ...base,
      ...optional('gpuIndex', incident.gpu),
      xids: mergeXids(undefined, incident.xid),
      faulty: true,
      diag: diagOf(incident.gpu),
    });
  }
  return records.sort(
    (a, b) => Number(b.faulty) - Number(a.faulty) || (a.gpuIndex ?? -1) - (b.gpuIndex ?? -1),
  );
}

function mergeXids(seen: readonly number[] | undefined, xid: number | undefined): number[] {
  const all = new Set(seen ?? []);
  if (xid !== undefined) all.add(xid);
  return [...all].sort((a, b) => a - b);
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

import type { RepairDiagResult, RepairRecord } from '../domain/repair-record.js';
import { fromJson, opt, toJson } from './json.js';
import type { SqlDatabase, SqlStatement } from './sql.js';

/** The repair records (RMA evidence): one row per GPU and repair, keyed by incident and GPU. */
export interface RepairRecordRepo {
  /** Replaces the records of the incidents it names (a repeated write of the same end is harmless). */
  save(records: readonly RepairRecord[]): void;
  /** Repairs that ended at or after `since`, in the order they ended. */
  listSince(since: number): RepairRecord[];
  /** Every repair of a GPU, by UUID: a GPU that keeps coming back. */
  listByUuid(uuid: string): RepairRecord[];
}

interface Row {
  incident_id: string;
  gpu_key: number;
  action: string;
  node: string;
  instance_id: string | null;
  instance_type: string | null;
  zone: string | null;
  gpu_index: number | null;
  gpu_uuid: string | null;
  gpu_serial: string | null;
  pci_bus_id: string | null;
  xids: string;
  faulty: number;
  fault_key: string;
  category: string;
  diag_level: string | null;
  diag: string;
  detected_at: number;
  started_at: number;
  ended_at: number;
  outcome: string;
  reason: string | null;
}

/** A node-level record (no GPU named) is keyed -1. */
const NO_GPU = -1;

function toRow(r: RepairRecord): Row {
  return {
    incident_id: r.incidentId,
    gpu_key: r.gpuIndex ?? NO_GPU,
    action: r.action,
    node: r.node,
    instance_id: r.instanceId ?? null,
    instance_type: r.instanceType ?? null,
    zone: r.zone ?? null,
    gpu_index: r.gpuIndex ?? null,
    gpu_uuid: r.gpuUuid ?? null,
    gpu_serial: r.gpuSerial ?? null,
    pci_bus_id: r.pciBusId ?? null,
    xids: toJson(r.xids),
    faulty: r.faulty ? 1 : 0,
    fault_key: r.faultKey,
    category: r.category,
    diag_level: r.diagLevel ?? null,
    diag: toJson(r.diag),
    detected_at: r.detectedAt,
    started_at: r.startedAt,
    ended_at: r.endedAt,
    outcome: r.outcome,
    reason: r.reason ?? null,
  };
}

function fromRow(row: Row): RepairRecord {
  const record: RepairRecord = {
    incidentId: row.incident_id,
    action: row.action,
    node: row.node,
    xids: fromJson<number[]>(row.xids, []),
    faulty: row.faulty === 1,
    faultKey: row.fault_key,
    category: row.category,
    diag: fromJson<RepairDiagResult[]>(row.diag, []),
    detectedAt: row.detected_at,
    startedAt: row.started_at,
    endedAt: row.ended_at,
    outcome: row.outcome,
  };
  const optional: Partial<RepairRecord> = {
    instanceId: opt(row.instance_id),
    instanceType: opt(row.instance_type),
    zone: opt(row.zone),
    gpuIndex: opt(row.gpu_index),
    gpuUuid: opt(row.gpu_uuid),
    gpuSerial: opt(row.gpu_serial),
    pciBusId: opt(row.pci_bus_id),
    diagLevel: opt(row.diag_level),
    reason: opt(row.reason),
  };
  for (const [k, v] of Object.entries(optional)) if (v !== undefined) Object.assign(record, { [k]: v });
  return record;
}

const COLUMNS =
  'incident_id, gpu_key, action, node, instance_id, instance_type, zone, gpu_index, gpu_uuid, gpu_serial, ' +
  'pci_bus_id, xids, faulty, fault_key, category, diag_level, diag, detected_at, started_at, ended_at, outcome, reason';

export class SqliteRepairRecordRepo implements RepairRecordRepo {
  private readonly del: SqlStatement;
  private readonly ins: SqlStatement;
  private readonly since: SqlStatement<Row>;
  private readonly byUuid: SqlStatement<Row>;

  constructor(private readonly db: SqlDatabase) {
    this.del = db.prepare('DELETE FROM repair_records WHERE incident_id = ?');
    const names = COLUMNS.split(', ');
    this.ins = db.prepare(
      `INSERT INTO repair_records (${COLUMNS}) VALUES (${names.map((n) => `@${n}`).join(', ')})`,
    );
    this.since = db.prepare(
      `SELECT ${COLUMNS} FROM repair_records WHERE ended_at >= ? ORDER BY ended_at, incident_id, faulty DESC, gpu_key`,
    );
    this.byUuid = db.prepare(
      `SELECT ${COLUMNS} FROM repair_records WHERE gpu_uuid = ? ORDER BY ended_at, incident_id`,
    );
  }

  save(records: readonly RepairRecord[]): void {
    if (records.length === 0) return;
    this.db.transaction(() => {
      for (const id of new Set(records.map((r) => r.incidentId))) this.del.run(id);
      for (const r of records) this.ins.run(toRow(r));
    });
  }

  listSince(since: number): RepairRecord[] {
    return this.since.all(since).map(fromRow);
  }

  listByUuid(uuid: string): RepairRecord[] {
    return this.byUuid.all(uuid).map(fromRow);
  }
}

import type { Verdict } from '../domain/finding.js';
import { type Clock, fromJson, opt, toJson } from './json.js';
import { inList, listParam, type SqlDatabase, type SqlStatement } from './sql.js';

/** The last verdict and boot id per node: what `/gpu status` shows and how a reboot is recognised. */
export interface NodeStateRecord {
  node: string;
  verdict?: Verdict;
  lastScanAt?: number;
  bootId?: string;
  updatedAt: number;
}

export interface NodeStateRepo {
  get(node: string): NodeStateRecord | undefined;
  /** Whether the node was ever recorded, without decoding its verdict. */
  has(node: string): boolean;
  list(): NodeStateRecord[];
  /** Fields left undefined keep their stored value. */
  upsert(record: Omit<NodeStateRecord, 'updatedAt'>, now?: number): void;
  /** Moves the last-scan time of recorded nodes in one statement; unrecorded names are ignored. */
  touchMany(nodes: readonly string[], lastScanAt: number, now?: number): void;
  delete(node: string): void;
}

interface Row {
  node: string;
  verdict: string | null;
  last_scan_at: number | null;
  boot_id: string | null;
  updated_at: number;
}

function map(r: Row): NodeStateRecord {
  return {
    node: r.node,
    verdict: r.verdict === null ? undefined : fromJson<Verdict | undefined>(r.verdict, undefined),
    lastScanAt: opt(r.last_scan_at),
    bootId: opt(r.boot_id),
    updatedAt: r.updated_at,
  };
}

export class SqliteNodeStateRepo implements NodeStateRepo {
  private readonly sel: SqlStatement<Row>;
  private readonly all: SqlStatement<Row>;
  private readonly exists: SqlStatement<{ one: number }>;
  private readonly ups: SqlStatement;
  private readonly del: SqlStatement;
  private readonly touch: SqlStatement;

  constructor(
    private readonly db: SqlDatabase,
    private readonly clock: Clock,
  ) {
    this.sel = db.prepare('SELECT * FROM node_state WHERE node = ?');
    this.all = db.prepare('SELECT * FROM node_state ORDER BY node');
    this.exists = db.prepare('SELECT 1 AS one FROM node_state WHERE node = ?');
    this.ups = db.prepare(
      `INSERT INTO node_state (node, verdict, last_scan_at, boot_id, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (node) DO UPDATE SET verdict = COALESCE(excluded.verdict, node_state.verdict),
       last_scan_at = COALESCE(excluded.last_scan_at, node_state.last_scan_at),
       boot_id = COALESCE(excluded.boot_id, node_state.boot_id),
       updated_at = excluded.updated_at`,
    );
    this.del = db.prepare('DELETE FROM node_state WHERE node = ?');
    this.touch = db.prepare(
      `UPDATE node_state SET last_scan_at = ?, updated_at = ? WHERE ${inList(db, 'node')}`,
    );
  }

  touchMany(nodes: readonly string[], lastScanAt: number, now = this.clock()): void {
    if (nodes.length > 0) this.touch.run(lastScanAt, now, listParam(this.db, nodes));
  }

  get(node: string): NodeStateRecord | undefined {
    const r = this.sel.get(node);
    return r ? map(r) : undefined;
  }

  has(node: string): boolean {
    return this.exists.get(node) !== undefined;
  }

  list(): NodeStateRecord[] {
    return this.all.all().map(map);
  }

  upsert(record: Omit<NodeStateRecord, 'updatedAt'>, now = this.clock()): void {
    this.ups.run(
      record.node,
      record.verdict === undefined ? null : toJson(record.verdict),
      record.lastScanAt ?? null,
      record.bootId ?? null,
      now,
    );
  }

  delete(node: string): void {
    this.del.run(node);
  }
}

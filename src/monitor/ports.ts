/**
 * What the monitor reads and writes, and nothing else: the monitor owns this port, a store implements it.
 * The SQLite Store satisfies it as it is (its repositories have these methods); another store implements
 * each method with one query. Synchronous, so a node's reads and writes run inside one transaction.
 */
import type { Verdict } from '../domain/finding.js';
import type { Incident, IncidentState } from '../domain/incident.js';
import type { Exclusion } from '../domain/ports.js';
import type { GpuXidState } from './triage.js';

/** What a scan knows about a fault when it opens (or touches) its incident. */
export type IncidentSighting = Omit<
  Incident,
  'id' | 'state' | 'firstSeen' | 'lastSeen' | 'count' | 'updatedAt' | 'closedAt' | 'stateReason'
>;

/** What a later verdict (the model's) may change on an open incident. */
export type IncidentRefinement = Partial<
  Pick<
    Incident,
    'category' | 'severity' | 'recommendedAction' | 'explanation' | 'source' | 'plannedAction' | 'mode'
  >
>;

export interface MonitorIncidents {
  /** The open (non-terminal) incident of that fault on that node. */
  findOpen(node: string, faultKey: string): Incident | undefined;
  /** Atomically: touch the open incident for (node, faultKey) — last seen, count, evidence — or open one. */
  openOrTouch(sighting: IncidentSighting, now: number): { incident: Incident; created: boolean };
  /** Fault key and state of every open incident on the node: read for every node of every scan. */
  openFaultStates(node: string): { faultKey: string; state: IncidentState }[];
  /** The updated incident, or undefined when there is none with that id. */
  update(id: string, patch: IncidentRefinement, now: number): Incident | undefined;
}

export interface MonitorGpuState {
  /** The remembered XID state of the node's GPUs, by GPU index. */
  get(node: string): GpuXidState[];
  /** Replaces the listed GPUs' state; GPUs not listed keep theirs. */
  upsertMany(node: string, rows: readonly GpuXidState[], now: number): void;
}

export interface MonitorNodeState {
  /** Whether the node was ever recorded. */
  has(node: string): boolean;
  /** Fields left undefined keep their stored value. */
  upsert(record: { node: string; verdict: Verdict; lastScanAt: number; bootId?: string }, now: number): void;
  /** Moves the last-scan time of recorded nodes (one statement for many); unrecorded names are ignored. */
  touchMany(nodes: readonly string[], lastScanAt: number, now: number): void;
}

/** Small per-node memory (the fault keys and XID counts of the previous scan), as JSON values. */
export interface MonitorKv {
  get<T>(key: string): T | undefined;
  set(key: string, value: unknown, now: number): void;
}

export interface MonitorExclusions {
  /** The node's exclusion if it has not expired at `now`. */
  get(node: string, now: number): Exclusion | undefined;
}

export interface MonitorStore {
  readonly incidents: MonitorIncidents;
  readonly gpuState: MonitorGpuState;
  readonly nodeState: MonitorNodeState;
  readonly kv: MonitorKv;
  readonly exclusions: MonitorExclusions;
  /**
   * Runs `fn` so that its writes commit together or not at all; a call inside another one is a savepoint
   * that rolls back alone when `fn` throws.
   */
  transaction<T>(fn: () => T): T;
}

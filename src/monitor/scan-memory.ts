/**
 * What the monitor remembers between scans without the store: the digest that lets an unchanged quiet node
 * skip it, and the comparisons that keep per-node writes to what changed.
 */
import { hash } from 'node:crypto';
import type { Finding, Verdict } from '../domain/finding.js';
import type { NodeSnapshot } from '../domain/gpu.js';
import type { GpuNode } from '../domain/node.js';
import type { GpuXidState } from './triage.js';

/**
 * What a quiet node's last record was: a digest of what triage read, and what lets the next scan skip even the
 * rules (the node object and the source's readKey it was read with, and the verdict). References to objects
 * the scan holds anyway and one short string, so 5,000 nodes cost a few hundred kB.
 */
export interface QuietRecord {
  /** quietKey of the recorded snapshot and verdict. */
  key: string;
  bootId: string | undefined;
  node: GpuNode;
  readKey: string | undefined;
  /** Kept only with a readKey (the verdicts of 5,000 directly scraped nodes would be megabytes for nothing). */
  verdict: Verdict | undefined;
  /** Which scans (index mod the touch period) write this node's scan time. */
  bucket: number;
}

/**
 * The nodes this process last recorded as quiet (no fault, nothing remembered but their GPUs' XID state). A
 * scan that finds such a node unchanged records nothing for it, and its stored last-scan time moves in one
 * statement for many nodes, once every `touchEvery` full scans (staggered by name, so each scan writes about
 * 1/touchEvery of them; in memory, `/gpu status` has every scan's time). Only this process's own records fill
 * it, and the monitor is the only writer of those records, so it cannot disagree with the store.
 */
export class QuietNodes {
  private readonly records = new Map<string, QuietRecord>();
  private due: string[] = [];
  /** The bucket whose scan times this scan writes; undefined: every quiet node seen (a targeted scan). */
  private phase: number | undefined;

  constructor(private readonly touchEvery: number) {
    if (!Number.isInteger(touchEvery) || touchEvery < 1)
      throw new Error('touchEvery must be a positive integer');
  }

  /** A full scan (its index) forgets nodes no longer listed; a targeted scan (undefined) touches all it sees. */
  beginScan(scanIndex: number | undefined, listed?: readonly GpuNode[]): void {
    this.phase = scanIndex === undefined ? undefined : scanIndex % this.touchEvery;
    if (!listed) return;
    const names = new Set(listed.map((n) => n.name));
    for (const name of this.records.keys()) if (!names.has(name)) this.records.delete(name);
  }

  record(node: GpuNode, snapshot: NodeSnapshot, verdict: Verdict): QuietRecord {
    return {
      key: quietKey(snapshot, verdict),
      bootId: node.bootId,
      node,
      readKey: snapshot.readKey,
      verdict: snapshot.readKey !== undefined ? verdict : undefined,
      bucket: bucketOf(node.name, this.touchEvery),
    };
  }

  set(name: string, record: QuietRecord | undefined): void {
    if (record) this.records.set(name, record);
    else this.records.delete(name);
  }

  delete(name: string): void {
    this.records.delete(name);
  }

  /**
   * The verdict recorded for a quiet node read again from the same node object with the same readKey: the
   * source promises the same snapshot, so the rules would give the same verdict and triage nothing to do.
   */
  unchanged(node: GpuNode, snapshot: NodeSnapshot): Verdict | undefined {
    if (snapshot.readKey === undefined) return undefined;
    const q = this.records.get(node.name);
    if (q === undefined || q.node !== node || q.readKey !== snapshot.readKey) return undefined;
    this.seen(q);
    return q.verdict;
  }

  /**
   * Whether a quiet node is unchanged by its digest: no actionable finding, the same verdict and boot, and the
   * same GPU XID readings — then recording it again would write nothing but its scan time.
   */
  still(node: GpuNode, snapshot: NodeSnapshot, verdict: Verdict): boolean {
    const q = this.records.get(node.name);
    if (!q || q.bootId !== node.bootId || verdict.findings.some(actionable)) return false;
    if (quietKey(snapshot, verdict) !== q.key) return false;
    // The next scan can take the cheaper way when it reads the node the same again.
    q.node = node;
    q.readKey = snapshot.readKey;
    q.verdict = snapshot.readKey !== undefined ? verdict : undefined;
    this.seen(q);
    return true;
  }

  /** The quiet nodes whose scan time is due, once; a failed write should `forget` them. */
  takeDue(): string[] {
    const due = this.due;
    this.due = [];
    return due;
  }

  /** Forgets every record (another process may have written the nodes' records since). */
  clear(): void {
    this.records.clear();
    this.due = [];
  }

  /** After a failed write: the next scan records these nodes in full rather than trust what the store missed. */
  forget(names: readonly string[]): void {
    for (const name of names) this.records.delete(name);
  }

  private seen(q: QuietRecord): void {
    if (this.phase === undefined || q.bucket === this.phase) this.due.push(q.node.name);
  }
}

/** A stable bucket in [0, n) for a node name (FNV-1a). */
export function bucketOf(name: string, n: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return (h >>> 0) % n;
}

/**
 * The verdict and every XID reading of the snapshot (what triage reads of it), as one digest. The text is
 * built first and hashed in one call: a hash object fed per GPU was a tenth of a 5,000-node scan's CPU.
 */
export function quietKey(snapshot: NodeSnapshot, verdict: Verdict): string {
  let text = JSON.stringify(verdict);
  for (const g of snapshot.gpus) {
    text += `|${g.index}:${g.xidLast ?? ''}:${g.xidCount ?? ''}`;
    for (const x of g.xids ?? []) text += `,${x.xid}:${x.count ?? ''}`;
  }
  return hash('sha1', text, 'base64');
}

export const actionable = (f: Finding) => f.severity === 'warning' || f.severity === 'critical';

export function changedGpuRows(next: readonly GpuXidState[], stored: readonly GpuXidState[]): GpuXidState[] {
  const byGpu = new Map(stored.map((r) => [r.gpu, r]));
  return next.filter((r) => {
    const s = byGpu.get(r.gpu);
    return !s || s.xidLast !== r.xidLast || s.xidCount !== r.xidCount;
  });
}

export function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

export function sameCounts(
  a: Readonly<Record<string, number>> | undefined,
  b: Readonly<Record<string, number>>,
): boolean {
  if (!a) return false;
  const keys = Object.keys(b);
  return keys.length === Object.keys(a).length && keys.every((k) => a[k] === b[k]);
}

/**
 * What the monitor remembers between scans without the store: the digest that lets an unchanged quiet node
 * skip it, and the comparisons that keep per-node writes to what changed.
 */
import { hash } from 'node:crypto';
import type { Finding, Verdict } from '../domain/finding.js';
import type { NodeSnapshot } from '../domain/gpu.js';
import type { GpuXidState } from './triage.js';

/** What a quiet node's last record was (see Monitor.quiet): a digest, so 5,000 nodes cost a few hundred kB. */
export interface QuietRecord {
  /** quietKey of the recorded snapshot and verdict. */
  key: string;
  bootId: string | undefined;
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

/**
 * Detection coverage: which signal families the nodes' last reads carried. A family a node did not carry
 * was not read there — on a stock dcgm-exporter that is ECC, retired pages and NVLink errors — so a fault of
 * that kind cannot be seen on that node. Counting it keeps "no ECC errors" apart from "ECC not read".
 *
 * Decisions:
 * - A snapshot with a collection error carried nothing: it counts in `nodes`, in no family, and not in `read`
 *   (its absence is reported as a failed scrape, not as a coverage gap that would flap with every timeout).
 * - A snapshot whose source does not say (`signals` undefined: a file, conditions only) is not counted as
 *   carrying anything either, and is not in `read`: no claim is made about it.
 * - `missing` lists the expected families fewer than `read` nodes carried. `kernel_log` is not expected: only
 *   the dcgm-server source can read dmesg, and that source reports a failed dmesg as a missing part.
 */
import { type NodeSnapshot, SignalFamilies, type SignalFamily } from './gpu.js';

/** Families every GPU source is expected to carry once configured as the README says. */
export const ExpectedSignalFamilies: readonly SignalFamily[] = SignalFamilies.filter(
  (f) => f !== 'kernel_log',
);

/** What people call each family in a sentence ("ECC counters: 0 of 40 nodes"). */
export const signalFamilyLabel: Readonly<Record<SignalFamily, string>> = {
  xid: 'XID',
  xid_count: 'XID counts',
  ecc: 'ECC counters',
  retired_pages: 'retired pages',
  row_remap: 'row remapping',
  nvlink: 'NVLink error counters',
  health: 'DCGM health',
  thermal: 'temperatures',
  kernel_log: 'kernel log',
};

export interface SignalCoverage {
  /** Nodes considered (every node of the scan or read model). */
  nodes: number;
  /** Nodes read without error whose source said which families it carried. */
  read: number;
  /** Per family: nodes whose last read carried it. */
  byFamily: Record<SignalFamily, number>;
  /** Expected families fewer than `read` nodes carried, in `SignalFamilies` order. */
  missing: SignalFamily[];
}

/** The part of a snapshot coverage looks at (status read models keep only this much). */
export type CoverageInput = Pick<NodeSnapshot, 'signals' | 'error'>;

export function emptyFamilyCounts(): Record<SignalFamily, number> {
  const out = {} as Record<SignalFamily, number>;
  for (const f of SignalFamilies) out[f] = 0;
  return out;
}

/** Coverage over the last read of each node. */
export function signalCoverage(snapshots: Iterable<CoverageInput>): SignalCoverage {
  const tally = coverageTally();
  for (const s of snapshots) tally.add(s);
  return tally.result();
}

/** signalCoverage, one read at a time (a scan counts its nodes as it records them, keeping none). */
export function coverageTally(): { add(s: CoverageInput): void; result(): SignalCoverage } {
  const byFamily = emptyFamilyCounts();
  let nodes = 0;
  let read = 0;
  return {
    add(s) {
      nodes++;
      const signals = s.signals;
      if (s.error || signals === undefined) return;
      read++;
      // Each family once, even if a source listed it twice (lists are a few entries: no Set).
      for (let i = 0; i < signals.length; i++) {
        const f = signals[i] as SignalFamily;
        if (signals.indexOf(f) === i) byFamily[f]++;
      }
    },
    result() {
      const missing = ExpectedSignalFamilies.filter((f) => byFamily[f] < read);
      return { nodes, read, byFamily: { ...byFamily }, missing };
    },
  };
}

/** `ECC counters: 0 of 40 nodes` for each missing family; empty when nothing is missing. */
export function missingFamilyPhrases(c: SignalCoverage): string[] {
  return c.missing.map((f) => `${signalFamilyLabel[f]}: ${c.byFamily[f]} of ${c.read} nodes`);
}

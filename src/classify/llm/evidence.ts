/**
 * What a node shows, split the way the prompt needs it: hard facts (numbers the collectors parsed) that
 * validation checks answers against, and free text (kernel log, dcgmi output, messages) that is untrusted.
 */
import type { Verdict } from '../../domain/finding.js';
import type { NodeSnapshot } from '../../domain/gpu.js';

// Only the driver's own line format counts as proof of an XID; free prose mentioning "Xid 13" does not.
const kernelXidPattern = /NVRM: Xid \([^)]*\): (\d{1,4})\b/;

/** Every XID the node has actually reported: counters, labels, rules findings and driver log lines. */
export function evidenceXids(snapshot: NodeSnapshot, verdict: Verdict): Set<number> {
  const xids = new Set<number>();
  for (const gpu of snapshot.gpus) {
    if (gpu.xidLast !== undefined && gpu.xidLast > 0) xids.add(gpu.xidLast);
    for (const o of gpu.xids ?? []) if (o.xid > 0) xids.add(o.xid);
  }
  for (const f of verdict.findings) if (f.xid !== undefined && f.xid > 0) xids.add(f.xid);
  for (const line of [...(snapshot.logLines ?? []), ...(snapshot.unparsed ?? [])]) {
    const m = kernelXidPattern.exec(line);
    if (m) xids.add(Number(m[1]));
  }
  return xids;
}

export function gpuIndices(snapshot: NodeSnapshot): Set<number> {
  return new Set(snapshot.gpus.map((g) => g.index));
}

function conditionIsBad(c: { type: string; status: string }): boolean {
  const positive = c.type === 'Ready' || c.type.endsWith('Ready');
  return positive ? c.status !== 'True' : c.status === 'True';
}

/** The free text of a node: everything a human or a driver wrote, which may contain anything. */
export function untrustedLines(snapshot: NodeSnapshot, verdict: Verdict): string[] {
  const lines: string[] = [];
  const seen = new Set<string>();
  const add = (line: string) => {
    if (line.trim() === '' || seen.has(line)) return;
    seen.add(line);
    lines.push(line);
  };
  for (const l of snapshot.unparsed ?? []) add(l);
  for (const l of snapshot.logLines ?? []) add(l);
  for (const gpu of snapshot.gpus) {
    for (const o of gpu.xids ?? []) if (o.message) add(`gpu ${gpu.index} xid ${o.xid}: ${o.message}`);
    for (const h of gpu.healthIncidents ?? []) add(`gpu ${gpu.index} health ${h.severity}: ${h.message}`);
  }
  for (const c of snapshot.conditions ?? []) {
    if (conditionIsBad(c) && (c.reason || c.message))
      add(`condition ${c.type}=${c.status} ${c.reason ?? ''}: ${c.message ?? ''}`);
  }
  for (const f of verdict.findings) if (f.ambiguous) for (const e of f.evidence) add(e);
  return lines;
}

/** Numbers and enums the collectors parsed, one line each, for the prompt's trusted section. */
export function factLines(snapshot: NodeSnapshot, verdict: Verdict): string[] {
  const facts: string[] = [];
  const seen = snapshot.gpus.length;
  facts.push(
    `gpus reported by DCGM: ${seen}` +
      (snapshot.expectedGpus !== undefined ? `; expected: ${snapshot.expectedGpus}` : '') +
      (snapshot.allocatableGpus !== undefined ? `; allocatable: ${snapshot.allocatableGpus}` : ''),
  );
  if (snapshot.error) facts.push(`collection error: ${snapshot.error.kind}`);
  for (const g of snapshot.gpus) {
    const parts: string[] = [`gpu ${g.index}`];
    if (g.model) parts.push(`model=${g.model}`);
    if (g.xidLast !== undefined) parts.push(`last_xid=${g.xidLast}`);
    if (g.xids?.length)
      parts.push(
        `xids=${g.xids.map((o) => (o.count !== undefined ? `${o.xid}x${o.count}` : `${o.xid}`)).join(',')}`,
      );
    const numeric: [string, number | undefined][] = [
      ['ecc_dbe_volatile', g.eccDbeVolatile],
      ['ecc_sbe_volatile', g.eccSbeVolatile],
      ['ecc_dbe_aggregate', g.eccDbeAggregate],
      ['retired_pages_pending', g.retiredPagesPending],
      ['row_remap_failure', g.rowRemapFailure],
      ['row_remap_pending', g.rowRemapPending],
      ['nvlink_crc_flit', g.nvlinkCrcFlitErrors],
      ['nvlink_replay', g.nvlinkReplayErrors],
      ['nvlink_recovery', g.nvlinkRecoveryErrors],
      ['temp_c', g.temperatureC],
      ['mem_temp_c', g.memoryTemperatureC],
    ];
    for (const [name, v] of numeric) if (v !== undefined) parts.push(`${name}=${v}`);
    if (g.health) parts.push(`health=${g.health}`);
    for (const h of g.healthIncidents ?? [])
      parts.push(`health_incident=${h.severity}/${h.system ?? '?'}/${h.code ?? '?'}`);
    facts.push(parts.join(' '));
  }
  for (const f of verdict.findings) {
    facts.push(
      `rules finding: ${f.category} severity=${f.severity} kind=${f.kind}` +
        (f.xid !== undefined ? ` xid=${f.xid}` : '') +
        (f.gpu !== undefined ? ` gpu=${f.gpu}` : '') +
        (f.ambiguous ? ' (unsettled by rules)' : ''),
    );
  }
  return facts;
}

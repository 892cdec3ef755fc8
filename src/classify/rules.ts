/**
 * The deterministic rule classifier: NodeSnapshot → findings → verdict. Pure: no I/O, no clock, no state.
 * Whether a sticky XID is a *new* event is the store's business, not this file's: here every XID the
 * snapshot shows is reported with a stable key, and the incident layer deduplicates on that key.
 *
 * Decisions worth knowing:
 * - XID category follows the final severity: critical → `XID_CRITICAL_<xid>`, warning AND info →
 *   `XID_WARNING_<xid>` (the default taxonomy has no info bucket; the finding keeps severity `info`).
 * - XID 154 takes its action from the text ("GPU Reset Required", "Node Reboot Required", "Drain and
 *   Reset" → critical/reboot; "Drain P2P" → warning/monitor; "None" → info/monitor); 144–150 from
 *   "Fatal"/"Nonfatal" in the text. Without readable text 144–150 keep the catalog default and are
 *   ambiguous. XID 154 without its action (the exporter's `err_msg` is the fixed "GPU Recovery Action
 *   Changed", dmon gives only the code) is critical/reboot and settled: the driver may be asking for a
 *   reboot, and no source here can say otherwise, so the policy puts it to a human (remediate/policy.ts)
 *   rather than letting a warning pass silently or a model guess it away.
 * - An XID missing from the catalog is ambiguous, warning, monitor. Policy per-XID overrides win last.
 * - Absent data is never "missing GPU": a collection error or a conditions-only snapshot skips the count.
 */

import { normalizePciBusId, parseKernelSxidLine, parseKernelXidLine } from '../collect/parse/kernel-log.js';
import { type Finding, type FindingKind, type Verdict, verdictOf } from '../domain/finding.js';
import type { GpuSample, HealthIncident, NodeSnapshot } from '../domain/gpu.js';
import type { ClassificationPolicy } from '../domain/policy.js';
import type { DcgmFrCatalog } from './catalog.js';

import { conditionFindings } from './node-conditions.js';
import { clip, finding, MAX_EVIDENCE_LINES, type RuleContext, type XidObs, xidFinding } from './xid-rules.js';

export { conditionProblem } from './node-conditions.js';
export { decideXid, type RuleContext, shortXidName, type XidDecision, xidCategory } from './xid-rules.js';

export const COLLECTION_FAILED = 'COLLECTION_FAILED';
export const UNKNOWN_CATEGORY = 'UNKNOWN';

function collectXids(snapshot: NodeSnapshot): Map<string, XidObs> {
  const obs = new Map<string, XidObs>();
  const add = (xid: number, gpu: number | undefined, key: string, evidence: string, message?: string) => {
    let o = obs.get(key);
    if (!o) {
      o = { xid, key, messages: [], evidence: [] };
      if (gpu !== undefined) o.gpu = gpu;
      obs.set(key, o);
    }
    if (message && !o.messages.includes(message)) o.messages.push(message);
    if (!o.evidence.includes(evidence)) o.evidence.push(evidence);
  };
  // Bus ids place kernel log lines on GPUs: built only when there are lines to place.
  const byBus = snapshot.logLines?.length ? new Map<string, number>() : undefined;
  for (const g of snapshot.gpus) {
    if (byBus && g.pciBusId) byBus.set(normalizePciBusId(g.pciBusId), g.index);
    if (g.xidLast !== undefined && g.xidLast !== 0) {
      add(
        g.xidLast,
        g.index,
        `xid:${g.xidLast}:gpu${g.index}`,
        `GPU ${g.index}: DCGM_FI_DEV_XID_ERRORS=${g.xidLast} (last XID code)`,
      );
    }
    for (const x of g.xids ?? []) {
      if (x.xid === 0) continue;
      const parts = [`GPU ${g.index}: XID ${x.xid}`];
      if (x.count !== undefined) parts.push(`count=${x.count}`);
      if (x.message) parts.push(`"${x.message}"`);
      add(x.xid, g.index, `xid:${x.xid}:gpu${g.index}`, parts.join(' '), x.message);
    }
  }
  for (const line of snapshot.logLines ?? []) {
    const k = parseKernelXidLine(line);
    if (!k) continue;
    const gpu = byBus?.get(k.pciBusId);
    const key = gpu !== undefined ? `xid:${k.xid}:gpu${gpu}` : `xid:${k.xid}:pci${k.pciBusId}`;
    add(k.xid, gpu, key, line, k.message || undefined);
  }
  return obs;
}

function sxidFindings(snapshot: NodeSnapshot): Finding[] {
  // Only kernel log lines carry SXids; most snapshots (every exporter or Prometheus read) have none.
  if (!snapshot.logLines?.length) return [];
  const out = new Map<string, Finding>();
  for (const line of snapshot.logLines ?? []) {
    const s = parseKernelSxidLine(line);
    if (!s) continue;
    const key = `sxid:${s.sxid}:pci${s.pciBusId}`;
    const prev = out.get(key);
    if (prev) {
      if (prev.evidence.length < MAX_EVIDENCE_LINES) prev.evidence.push(clip(line));
      continue;
    }
    const fatal = s.fatal === true;
    const f = finding(
      'nvlink',
      'NVLINK_ERROR',
      fatal ? 'critical' : 'warning',
      fatal ? 'reboot' : 'monitor',
      key,
      `NVSwitch ${s.device ?? s.pciBusId} reported SXid ${s.sxid}${s.fatal === undefined ? '' : fatal ? ' (fatal)' : ' (non-fatal)'}.`,
      [line],
    );
    // No SXid catalog in the rules: the LLM (or a human) should read the text.
    f.ambiguous = true;
    out.set(key, f);
  }
  return [...out.values()];
}

function memoryFindings(g: GpuSample, policy: ClassificationPolicy): Finding[] {
  const out: Finding[] = [];
  const i = g.index;
  if ((g.eccDbeVolatile ?? 0) > 0) {
    out.push(
      finding(
        'ecc_dbe',
        'ECC_ERROR',
        'critical',
        'reboot',
        `ecc_dbe:gpu${i}`,
        `GPU ${i} has ${g.eccDbeVolatile} uncorrectable (double-bit) ECC errors since the last reset.`,
        [`GPU ${i}: ECC DBE volatile total=${g.eccDbeVolatile}`],
        i,
      ),
    );
  }
  if ((g.rowRemapFailure ?? 0) > 0) {
    out.push(
      finding(
        'row_remap_failure',
        'ECC_ERROR',
        'critical',
        'reboot',
        `row_remap_failure:gpu${i}`,
        `GPU ${i} failed to remap a memory row after uncorrectable errors.`,
        [`GPU ${i}: DCGM_FI_DEV_ROW_REMAP_FAILURE=${g.rowRemapFailure}`],
        i,
      ),
    );
  }
  if ((g.retiredPagesPending ?? 0) > 0) {
    out.push(
      finding(
        'retired_pages',
        'ECC_ERROR',
        'warning',
        'monitor',
        `retired_pages_pending:gpu${i}`,
        `GPU ${i} has memory pages pending retirement; a GPU reset applies them.`,
        [`GPU ${i}: retired pages pending=${g.retiredPagesPending}`],
        i,
      ),
    );
  }
  if ((g.rowRemapPending ?? 0) > 0) {
    out.push(
      finding(
        'retired_pages',
        'ECC_ERROR',
        'warning',
        'monitor',
        `row_remap_pending:gpu${i}`,
        `GPU ${i} has a row remap pending; a GPU reset applies it.`,
        [`GPU ${i}: DCGM_FI_DEV_ROW_REMAP_PENDING=${g.rowRemapPending}`],
        i,
      ),
    );
  }
  if (g.eccSbeVolatile !== undefined && g.eccSbeVolatile >= policy.sbeStormThreshold) {
    out.push(
      finding(
        'sbe_storm',
        'ECC_ERROR',
        'warning',
        'monitor',
        `sbe_storm:gpu${i}`,
        `GPU ${i} has ${g.eccSbeVolatile} corrected single-bit ECC errors (storm threshold ${policy.sbeStormThreshold}).`,
        [`GPU ${i}: ECC SBE volatile total=${g.eccSbeVolatile}`],
        i,
      ),
    );
  }
  return out;
}

function nvlinkFinding(g: GpuSample, policy: ClassificationPolicy): Finding | undefined {
  const t = policy.nvlinkErrorThreshold;
  const above = (v: number | undefined) => v !== undefined && v >= t;
  // The common case, no counter at the threshold, answered before any list is built (every GPU, every scan).
  if (
    !above(g.nvlinkCrcFlitErrors) &&
    !above(g.nvlinkCrcDataErrors) &&
    !above(g.nvlinkReplayErrors) &&
    !above(g.nvlinkRecoveryErrors)
  )
    return undefined;
  const counters: [string, number | undefined][] = [
    ['CRC flit', g.nvlinkCrcFlitErrors],
    ['CRC data', g.nvlinkCrcDataErrors],
    ['replay', g.nvlinkReplayErrors],
    ['recovery', g.nvlinkRecoveryErrors],
  ];
  const over = counters.filter(([, v]) => v !== undefined && v >= policy.nvlinkErrorThreshold);
  if (over.length === 0) return undefined;
  return finding(
    'nvlink',
    'NVLINK_ERROR',
    'warning',
    'monitor',
    `nvlink:gpu${g.index}`,
    `GPU ${g.index} has NVLink ${over.map(([n]) => n).join(', ')} errors at or above ${policy.nvlinkErrorThreshold}.`,
    over.map(([n, v]) => `GPU ${g.index}: NVLink ${n} errors=${v}`),
    g.index,
  );
}

function thermalFinding(g: GpuSample, policy: ClassificationPolicy): Finding | undefined {
  if (g.temperatureC === undefined || g.temperatureC < policy.thermalWarningC) return undefined;
  return finding(
    'thermal',
    'THERMAL_WARNING',
    'warning',
    'none',
    `thermal:gpu${g.index}`,
    `GPU ${g.index} is at ${g.temperatureC} °C (warning at ${policy.thermalWarningC} °C).`,
    [`GPU ${g.index}: DCGM_FI_DEV_GPU_TEMP=${g.temperatureC}`],
    g.index,
  );
}

/** A health incident's text may join several DCGM messages with ", ": each part is looked up. */
function frLookup(message: string, fr: DcgmFrCatalog | undefined): { names: string[]; unmatched: boolean } {
  if (!fr) return { names: [], unmatched: true };
  const whole = fr.match(message);
  if (whole) return { names: [whole.name], unmatched: false };
  const names: string[] = [];
  let unmatched = false;
  for (const part of message.split(/,\s+/)) {
    const e = fr.match(part);
    if (e) {
      if (!names.includes(e.name)) names.push(e.name);
    } else unmatched = true;
  }
  return { names, unmatched };
}

/**
 * DCGM health codes that restate a counter the memory rules already read: the same fault, so the health
 * incident joins that finding as evidence instead of opening a second incident (an exporter with both the
 * ECC counters and DCGM_EXP_GPU_HEALTH_STATUS reports one DBE twice).
 */
const SAME_FAULT_AS: Readonly<Record<string, FindingKind>> = {
  DCGM_FR_VOLATILE_DBE_DETECTED: 'ecc_dbe',
  DCGM_FR_ROW_REMAP_FAILURE: 'row_remap_failure',
};

function healthFindings(g: GpuSample, ctx: RuleContext, memory: readonly Finding[] = []): Finding[] {
  const i = g.index;
  const incidents: HealthIncident[] = g.healthIncidents ?? [];
  if (incidents.length === 0) {
    if (g.health === 'fail' || g.health === 'warn') {
      const fail = g.health === 'fail';
      return [
        finding(
          'health',
          fail ? 'GPU_HEALTH_ERROR' : 'GPU_HEALTH_WARNING',
          fail ? 'critical' : 'warning',
          fail ? 'reboot' : 'monitor',
          `health:gpu${i}`,
          `DCGM health check ${fail ? 'FAILED' : 'warns'} on GPU ${i}.`,
          [`GPU ${i}: DCGM health=${g.health}`],
          i,
        ),
      ];
    }
    return [];
  }
  const bySystem = new Map<string, Finding>();
  for (const inc of incidents) {
    const fail = inc.severity === 'fail';
    const system = inc.system ?? 'GPU';
    const key = `health:${system.toLowerCase().replace(/\s+/g, '_')}:gpu${i}`;
    const lookup = inc.code ? { names: [inc.code], unmatched: false } : frLookup(inc.message, ctx.frCodes);
    const codeText = lookup.names.length > 0 ? ` [${lookup.names.join(', ')}]` : '';
    const evidence = `GPU ${i}: DCGM health ${inc.severity} ${system}: ${inc.message}${codeText}`;
    const same =
      lookup.names.length > 0 && !lookup.unmatched
        ? memory.find((m) => lookup.names.every((n) => SAME_FAULT_AS[n] === m.kind))
        : undefined;
    if (same) {
      same.evidence.push(clip(evidence));
      continue;
    }
    const prev = bySystem.get(key);
    if (prev) {
      prev.evidence.push(clip(evidence));
      if (fail && prev.severity !== 'critical') {
        prev.severity = 'critical';
        prev.action = 'reboot';
        prev.category = 'GPU_HEALTH_ERROR';
      }
      if (lookup.unmatched) prev.ambiguous = true;
      continue;
    }
    const f = finding(
      'health',
      fail ? 'GPU_HEALTH_ERROR' : 'GPU_HEALTH_WARNING',
      fail ? 'critical' : 'warning',
      fail ? 'reboot' : 'monitor',
      key,
      `DCGM health check ${fail ? 'FAILED' : 'warns'} on GPU ${i} (${system}): ${inc.message}`,
      [evidence],
      i,
    );
    if (lookup.unmatched) f.ambiguous = true;
    bySystem.set(key, f);
  }
  return [...bySystem.values()];
}

/**
 * Fewer physical GPUs than the node should have. `expectedGpus` is a physical count (domain/gpu-count.ts) and
 * DCGM's list is physical too (the exporter's MIG instances fold into their GPU), so time-sliced and MIG
 * nodes compare like with like; `allocatableGpus` is undefined under MIG, where devices are not GPUs.
 */
function missingGpuFinding(snapshot: NodeSnapshot): Finding | undefined {
  const expected = snapshot.expectedGpus;
  if (expected === undefined || expected <= 0) return undefined;
  const evidence: string[] = [];
  // Absent data is not a missing GPU: only count what a working DCGM source reported.
  const dcgmCounted = snapshot.error === undefined && snapshot.source !== 'conditions';
  const seen = new Set(snapshot.gpus.map((g) => g.index)).size;
  if (dcgmCounted && seen < expected) {
    const indices = new Set(snapshot.gpus.map((g) => g.index));
    const missing = Array.from({ length: expected }, (_, k) => k).filter((k) => !indices.has(k));
    evidence.push(
      `DCGM reports ${seen} of ${expected} GPUs${missing.length > 0 ? ` (missing index ${missing.join(', ')})` : ''}`,
    );
  }
  if (snapshot.allocatableGpus !== undefined && snapshot.allocatableGpus < expected) {
    evidence.push(`allocatable GPUs ${snapshot.allocatableGpus} < expected ${expected}`);
  }
  if (evidence.length === 0) return undefined;
  return finding(
    'gpu_missing',
    'GPU_MISSING',
    'critical',
    'reboot',
    'gpu_missing',
    `Node ${snapshot.node} shows fewer GPUs than the ${expected} it should have.`,
    evidence,
  );
}

/** Every finding the rules see in one snapshot (unsorted). */
export function ruleFindings(snapshot: NodeSnapshot, ctx: RuleContext): Finding[] {
  const findings: Finding[] = [];
  if (snapshot.error) {
    findings.push(
      finding(
        'collection',
        COLLECTION_FAILED,
        'warning',
        'none',
        'collection',
        `Could not read GPU data from ${snapshot.node} (${snapshot.error.kind}): ${snapshot.error.message}`,
        [`${snapshot.error.kind}: ${snapshot.error.message}`],
      ),
    );
  }
  const xids = collectXids(snapshot);
  const fromConditions = conditionFindings(snapshot, xids, ctx);
  for (const o of xids.values()) findings.push(xidFinding(o, ctx));
  findings.push(...fromConditions);
  findings.push(...sxidFindings(snapshot));
  for (const g of snapshot.gpus) {
    const memory = memoryFindings(g, ctx.policy);
    findings.push(...memory);
    const nv = nvlinkFinding(g, ctx.policy);
    if (nv) findings.push(nv);
    const th = thermalFinding(g, ctx.policy);
    if (th) findings.push(th);
    findings.push(...healthFindings(g, ctx, memory));
  }
  const missing = missingGpuFinding(snapshot);
  if (missing) findings.push(missing);
  const unparsed = (snapshot.unparsed ?? []).filter((l) => l.trim() !== '');
  if (unparsed.length > 0) {
    const f = finding(
      'unknown',
      UNKNOWN_CATEGORY,
      'info',
      'none',
      'unparsed',
      `${unparsed.length} line(s) of GPU output the rules could not read.`,
      unparsed,
    );
    f.ambiguous = true;
    findings.push(f);
  }
  return findings;
}

/** The node verdict: the most severe finding wins; all findings are kept. */
export function classifySnapshot(snapshot: NodeSnapshot, ctx: RuleContext): Verdict {
  return verdictOf(snapshot.node, ruleFindings(snapshot, ctx));
}

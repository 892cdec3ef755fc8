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
import {
  type Action,
  type Finding,
  type FindingKind,
  NODE_CONDITION,
  type Severity,
  severityRank,
  type Verdict,
  verdictOf,
} from '../domain/finding.js';
import type { GpuSample, HealthIncident, NodeCondition, NodeSnapshot } from '../domain/gpu.js';
import type { ClassificationPolicy } from '../domain/policy.js';
import type { DcgmFrCatalog, XidCatalog, XidEntry } from './catalog.js';

export interface RuleContext {
  catalog: XidCatalog;
  policy: ClassificationPolicy;
  /** DCGM_FR codes, to name health incidents; without it every health incident text is ambiguous. */
  frCodes?: DcgmFrCatalog;
}

export const COLLECTION_FAILED = 'COLLECTION_FAILED';
export const UNKNOWN_CATEGORY = 'UNKNOWN';

const MAX_EVIDENCE_LINES = 20;
const MAX_EVIDENCE_CHARS = 400;

function clip(s: string): string {
  return s.length > MAX_EVIDENCE_CHARS ? `${s.slice(0, MAX_EVIDENCE_CHARS)}…` : s;
}

export function xidCategory(xid: number, severity: Severity): string {
  return severity === 'critical' ? `XID_CRITICAL_${xid}` : `XID_WARNING_${xid}`;
}

/** `ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS (GPU has fallen off the bus)` → `GPU has fallen off the bus`. */
export function shortXidName(entry: XidEntry): string {
  const m = /\(([^()]+)\)\s*$/.exec(entry.name);
  return m?.[1] ?? entry.name;
}

export interface XidDecision {
  severity: Severity;
  action: Action;
  category: string;
  ambiguous: boolean;
  /** Why, in a few words (catalog default, text decode, policy override, unknown). */
  basis: string;
  /** The decision needed the driver's text and did not have it: another reading of the same XID wins. */
  textless?: boolean;
}

const XID154_ACTIONS: { re: RegExp; severity: Severity; action: Action; label: string }[] = [
  { re: /node reboot required/i, severity: 'critical', action: 'reboot', label: 'Node Reboot Required' },
  { re: /gpu reset required/i, severity: 'critical', action: 'reboot', label: 'GPU Reset Required' },
  { re: /drain and reset/i, severity: 'critical', action: 'reboot', label: 'Drain and Reset' },
  { re: /drain p2p/i, severity: 'warning', action: 'monitor', label: 'Drain P2P' },
  { re: /\bnone\b/i, severity: 'info', action: 'monitor', label: 'None' },
];

/** XID 154's text: `GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)` — the target wins. */
function decode154(message: string): { severity: Severity; action: Action; label: string } | undefined {
  const target = /\bto\s+(?:0x[0-9a-f]+\s*)?\(([^)]*)\)/i.exec(message)?.[1] ?? message;
  return XID154_ACTIONS.find((a) => a.re.test(target));
}

/** NVLink5 XIDs 144–150 carry Fatal / Nonfatal (or "Link Fatal") in their text. */
function decodeNvlink5(message: string): { severity: Severity; action: Action; label: string } | undefined {
  if (/\bnon-?\s?fatal\b/i.test(message))
    return { severity: 'warning', action: 'monitor', label: 'Nonfatal' };
  if (/\bfatal\b/i.test(message)) return { severity: 'critical', action: 'reboot', label: 'Fatal' };
  return undefined;
}

/**
 * NVIDIA's recovery bucket in words, naming the catalog's own action word once. The planned action is
 * the policy's business and is shown apart on the alert, so the explanation does not repeat it.
 */
const catalogRecovery: Record<XidEntry['catalogAction'], string> = {
  none: 'none needed (NONE)',
  monitor: 'keep watching (MONITOR)',
  restart_app: 'restart the application (RESTART_APP)',
  reset_gpu: 'reset the GPU (RESET_GPU): drain the node and run nvidia-smi --gpu-reset, no reboot',
  reboot: 'reboot the node (REBOOT)',
  replace: 'replace the node (REPLACE)',
};

/** Severity/action/category of one XID with (optionally) its driver text, before merging observations. */
export function decideXid(xid: number, message: string | undefined, ctx: RuleContext): XidDecision {
  const entry = ctx.catalog.get(xid);
  let severity: Severity;
  let action: Action;
  let ambiguous = false;
  let textless = false;
  let basis: string;
  if (!entry) {
    severity = 'warning';
    action = 'monitor';
    ambiguous = true;
    basis = 'no recovery is known for it: reported as a warning and watched';
  } else {
    severity = entry.severity;
    action = entry.action;
    basis = `NVIDIA's recommended recovery: ${catalogRecovery[entry.catalogAction]}`;
    if (xid === 154) {
      const d = message ? decode154(message) : undefined;
      if (d) {
        severity = d.severity;
        action = d.action;
        basis = `the driver asks for recovery action "${d.label}"`;
      } else {
        severity = 'critical';
        action = 'reboot';
        textless = true;
        basis =
          'the recovery action the driver asked for is only in its kernel line, which this source does not show ' +
          '(the exporter’s err_msg for XID 154 is a fixed text, dmon gives only the code): a human decides';
      }
    } else if (xid >= 144 && xid <= 150) {
      const d = message ? decodeNvlink5(message) : undefined;
      if (d) {
        severity = d.severity;
        action = d.action;
        basis = `the driver marked this NVLink5 error ${d.label}`;
      } else {
        ambiguous = true;
        textless = true;
        basis = 'the driver did not say Fatal or Nonfatal';
      }
    }
  }
  const override = ctx.policy.xid[xid];
  if (override) {
    if (override.severity) severity = override.severity;
    if (override.action) action = override.action;
    if (override.severity || override.action) {
      basis = `the policy overrides XID ${xid}: ${severity}, ${action}`;
      ambiguous = false;
    }
  }
  const out: XidDecision = { severity, action, category: xidCategory(xid, severity), ambiguous, basis };
  if (textless && !(override?.severity || override?.action)) out.textless = true;
  return out;
}

interface XidObs {
  xid: number;
  gpu?: number;
  key: string;
  messages: string[];
  evidence: string[];
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function gpuLabel(gpu: number | undefined): string {
  return gpu === undefined ? 'A GPU' : `GPU ${gpu}`;
}

function xidFinding(o: XidObs, ctx: RuleContext): Finding {
  // With several texts for one XID on one GPU, the most severe reading counts — among those that could read
  // the driver's text, when one could (XID 154's kernel line beats the exporter's fixed err_msg).
  const all = (o.messages.length > 0 ? o.messages : [undefined]).map((m) => decideXid(o.xid, m, ctx));
  const read = all.filter((d) => !d.textless);
  const decisions = read.length > 0 ? read : all;
  const decided = decisions.reduce((best, d) =>
    severityRank[d.severity] > severityRank[best.severity] || (best.ambiguous && !d.ambiguous) ? d : best,
  );
  const entry = ctx.catalog.get(o.xid);
  const what = entry ? shortXidName(entry) : 'an XID not in NVIDIA’s catalog';
  const f: Finding = {
    kind: 'xid',
    category: decided.category,
    severity: decided.severity,
    action: decided.action,
    xid: o.xid,
    evidence: o.evidence.slice(0, MAX_EVIDENCE_LINES).map(clip),
    explanation: `${gpuLabel(o.gpu)} reported XID ${o.xid} (${what}). ${capitalize(decided.basis)}.`,
    source: 'rules',
    key: o.key,
  };
  if (o.gpu !== undefined) f.gpu = o.gpu;
  if (decided.ambiguous) f.ambiguous = true;
  return f;
}

function finding(
  kind: FindingKind,
  category: string,
  severity: Severity,
  action: Action,
  key: string,
  explanation: string,
  evidence: string[],
  gpu?: number,
): Finding {
  const f: Finding = {
    kind,
    category,
    severity,
    action,
    evidence: evidence.slice(0, MAX_EVIDENCE_LINES).map(clip),
    explanation,
    source: 'rules',
    key,
  };
  if (gpu !== undefined) f.gpu = gpu;
  return f;
}

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
  const byBus = new Map<string, number>();
  for (const g of snapshot.gpus) {
    if (g.pciBusId) byBus.set(normalizePciBusId(g.pciBusId), g.index);
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
    const gpu = byBus.get(k.pciBusId);
    const key = gpu !== undefined ? `xid:${k.xid}:gpu${gpu}` : `xid:${k.xid}:pci${k.pciBusId}`;
    add(k.xid, gpu, key, line, k.message || undefined);
  }
  return obs;
}

function sxidFindings(snapshot: NodeSnapshot): Finding[] {
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

const STANDARD_CONDITIONS = new Set([
  'Ready',
  'MemoryPressure',
  'DiskPressure',
  'PIDPressure',
  'NetworkUnavailable',
]);
const GPU_CONDITION_RE = /gpu|xid|nvidia|nvlink|accelerat|dcgm|ecc/i;
/** node-problem-detector's default problem conditions (True = a problem); none is about GPUs. */
const NPD_NODE_PROBLEMS = new Set([
  'KernelDeadlock',
  'ReadonlyFilesystem',
  'FrequentKubeletRestart',
  'FrequentDockerRestart',
  'FrequentContainerdRestart',
  'CorruptDockerOverlay2',
]);

/**
 * What a node condition reports: a GPU problem, a node problem, or nothing. GPU conditions are the EKS node
 * monitoring agent's AcceleratedHardwareReady and NVIDIA's / node-problem-detector's GPU conditions (a type
 * naming the GPU, NVIDIA, XID, NVLink, DCGM or ECC). The agent's other `*Ready` conditions (KernelReady,
 * NetworkingReady, StorageReady, ContainerRuntimeReady) going False, and NPD's default node problems, are
 * node problems: real, worth an alert, but no GPU fault.
 */
export function conditionProblem(c: NodeCondition): 'gpu' | 'node' | undefined {
  if (STANDARD_CONDITIONS.has(c.type)) return undefined;
  if (/Ready$/.test(c.type)) {
    if (c.status !== 'False') return undefined;
    return c.type === 'AcceleratedHardwareReady' || GPU_CONDITION_RE.test(c.type) ? 'gpu' : 'node';
  }
  if (c.status !== 'True') return undefined;
  if (GPU_CONDITION_RE.test(`${c.type} ${c.reason ?? ''}`)) return 'gpu';
  return NPD_NODE_PROBLEMS.has(c.type) ? 'node' : undefined;
}

function conditionFindings(snapshot: NodeSnapshot, xids: Map<string, XidObs>, ctx: RuleContext): Finding[] {
  const out: Finding[] = [];
  for (const c of snapshot.conditions ?? []) {
    const problem = conditionProblem(c);
    if (!problem) continue;
    const evidence = `condition ${c.type}=${c.status}${c.reason ? ` reason=${c.reason}` : ''}${c.message ? ` message="${c.message}"` : ''}`;
    if (problem === 'node') {
      // One incident per condition type (a new reason is the same problem); the policy decides, alert only by default.
      out.push(
        finding(
          'condition',
          NODE_CONDITION,
          'warning',
          'none',
          `condition:${c.type}`,
          `Node condition ${c.type} is ${c.status}${c.reason ? ` (${c.reason})` : ''}: a node problem, not a GPU fault.`,
          [evidence],
        ),
      );
      continue;
    }
    const xidMatch = /(?:Nvidia)?XID(\d+)/i.exec(`${c.reason ?? ''} ${c.type}`);
    if (xidMatch) {
      const xid = Number(xidMatch[1]);
      // Same XID already seen from DCGM/kernel: the condition is more evidence for it, not a new fault.
      const existing = [...xids.values()].filter((o) => o.xid === xid);
      if (existing.length > 0) {
        for (const o of existing) o.evidence.push(evidence);
        continue;
      }
      const fromMsg = c.message ? parseKernelXidLine(c.message) : undefined;
      const gpu = fromMsg
        ? snapshot.gpus.find((g) => g.pciBusId && normalizePciBusId(g.pciBusId) === fromMsg.pciBusId)?.index
        : undefined;
      const key = gpu !== undefined ? `xid:${xid}:gpu${gpu}` : `xid:${xid}:condition`;
      const o: XidObs = {
        xid,
        key,
        messages: c.message ? [fromMsg?.message ?? c.message] : [],
        evidence: [evidence],
      };
      if (gpu !== undefined) o.gpu = gpu;
      const f = xidFinding(o, ctx);
      f.kind = 'condition';
      out.push(f);
      continue;
    }
    const text = `${c.reason ?? ''} ${c.type}`;
    const key = `condition:${c.type}${c.reason ? `:${c.reason}` : ''}`;
    const why = `Node condition ${c.type} is ${c.status}${c.reason ? ` (${c.reason})` : ''}`;
    if (/double.?bit|dbe|uncorrectable/i.test(text)) {
      out.push(
        finding('condition', 'ECC_ERROR', 'critical', 'reboot', key, `${why}: uncorrectable memory errors.`, [
          evidence,
        ]),
      );
    } else if (/nvlink/i.test(text)) {
      out.push(
        finding('condition', 'NVLINK_ERROR', 'warning', 'monitor', key, `${why}: NVLink errors.`, [evidence]),
      );
    } else if (/thermal|temperature/i.test(text)) {
      out.push(
        finding('condition', 'THERMAL_WARNING', 'warning', 'none', key, `${why}: thermal.`, [evidence]),
      );
    } else {
      const f = finding('condition', 'GPU_HEALTH_ERROR', 'critical', 'reboot', key, `${why}.`, [evidence]);
      // A reason the rules do not know: the LLM may name it better; the policy still decides the action.
      f.ambiguous = true;
      out.push(f);
    }
  }
  return out;
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

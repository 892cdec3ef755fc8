/**
 * Parsers for what the dcgm-server source runs (the AWS sample's commands):
 *   `dcgmi discovery -l`, `dcgmi dmon -e 230,319 -c 1`, `dcgmi health -c [-j]`.
 * Shapes follow DCGM's own printers (dcgmi/DcgmiOutput.cpp, dcgmi/Health.cpp, dcgmi/DeviceMonitor.cpp):
 *   - tree/box output: `| label | value |` rows, children indented by 3 with `-> `, text that does not fit in a
 *     row continues on rows with an empty label ("overflow");
 *   - JSON (`-j`): `{"body": {name: {"value", "children": {…}, "overflow": […]}}, "header": […]}`.
 * Field 230 (XIDER, DCGM_FI_DEV_XID_ERRORS) is the LAST XID code, never a count. Field 319 is
 * ecc_dbe_volatile_device (EDVDV); 311 is ecc_dbe_volatile_total (EDVTL) — both read as volatile DBEs.
 */
import type { GpuSample, HealthIncident, HealthState } from '../../domain/gpu.js';
import { parseKernelXids } from './kernel-log.js';
import type { ParseIssue } from './prometheus.js';

// ---------------------------------------------------------------- discovery

export interface DiscoveredGpu {
  index: number;
  model?: string;
  pciBusId?: string;
  uuid?: string;
}

export interface DiscoveryResult {
  gpus: DiscoveredGpu[];
  /** The "N GPUs found." line, when present. */
  declaredCount?: number;
  errors: ParseIssue[];
}

const FOUND_RE = /^\s*(\d+)\s+([A-Za-z-]+?)s?\s+found\.?\s*$/;

export function parseDcgmiDiscovery(text: string): DiscoveryResult {
  const gpus: DiscoveredGpu[] = [];
  const errors: ParseIssue[] = [];
  let declaredCount: number | undefined;
  let section: 'gpu' | 'other' = 'gpu';
  let current: DiscoveredGpu | undefined;
  const lines = text.split('\n');
  lines.forEach((rawLine, i) => {
    const line = rawLine.replace(/\r$/, '');
    const found = FOUND_RE.exec(line);
    if (found) {
      const thing = (found[2] ?? '').toLowerCase();
      section = thing === 'gpu' ? 'gpu' : 'other';
      if (section === 'gpu') declaredCount = Number(found[1]);
      current = undefined;
      return;
    }
    if (section !== 'gpu' || !line.startsWith('|')) return;
    const cells = line.split('|');
    if (cells.length < 4) return;
    const id = (cells[1] ?? '').trim();
    const content = cells.slice(2, -1).join('|').trim();
    if (id === 'GPU ID') return;
    if (id !== '') {
      if (!/^\d+$/.test(id)) {
        errors.push({ line: i + 1, message: `discovery: GPU ID ${JSON.stringify(id)} is not an integer` });
        current = undefined;
        return;
      }
      current = { index: Number(id) };
      gpus.push(current);
    }
    if (!current) return;
    const kv = /^([^:]+):\s*(.*)$/.exec(content);
    if (!kv) return;
    const key = (kv[1] ?? '').trim().toLowerCase();
    const value = (kv[2] ?? '').trim();
    if (value === '') return;
    if (key === 'name') current.model = value;
    else if (key === 'pci bus id') current.pciBusId = value;
    else if (key === 'device uuid' || key === 'uuid') current.uuid = value;
  });
  const out: DiscoveryResult = { gpus, errors };
  if (declaredCount !== undefined) out.declaredCount = declaredCount;
  return out;
}

// ---------------------------------------------------------------- dmon

/** dmon short names → GpuSample fields. */
export const DMON_FIELDS: Readonly<Record<string, keyof GpuSample>> = {
  XIDER: 'xidLast', // 230, last XID code
  EDVTL: 'eccDbeVolatile', // 311
  EDVDV: 'eccDbeVolatile', // 319 (device memory; what the AWS sample read)
  ESVTL: 'eccSbeVolatile', // 310
  ESVDV: 'eccSbeVolatile', // 318
  EDATL: 'eccDbeAggregate', // 313
  ESATL: 'eccSbeAggregate', // 312
  TMPTR: 'temperatureC', // 150
  MMTMP: 'memoryTemperatureC', // 140
  POWER: 'powerW', // 155
  GPUTL: 'utilizationPct', // 203
};

export interface DmonRow {
  entity: string;
  id: number;
  /** Column short name → value; N/A (not available) is undefined. */
  values: Record<string, number | undefined>;
}

export interface DmonResult {
  columns: string[];
  /** The last row per entity (with `-c 1` there is one). */
  rows: DmonRow[];
  errors: ParseIssue[];
}

export function parseDcgmiDmon(text: string): DmonResult {
  const errors: ParseIssue[] = [];
  let columns: string[] = [];
  const latest = new Map<string, DmonRow>();
  text.split('\n').forEach((rawLine, i) => {
    const line = rawLine.replace(/\r$/, '').trim();
    if (line === '') return;
    if (line.startsWith('#Entity') || line.startsWith('# Entity')) {
      columns = line
        .replace(/^#\s*Entity/, '')
        .trim()
        .split(/\s+/)
        .filter(Boolean);
      return;
    }
    if (/^ID\b/.test(line) && !/^ID\s+\d/.test(line)) return;
    // A box border (the next command's table, e.g. `dcgmi health`) carries no data: not an unreadable row.
    if (/^\+[-=+]+$/.test(line)) return;
    const m = /^(GPU(?:-I|-CI)?|Switch|CPU|Link|NvSwitch)\s+(\S+)\s*(.*)$/.exec(line);
    if (!m) {
      if (columns.length > 0)
        errors.push({ line: i + 1, message: `dmon: unreadable row ${JSON.stringify(line)}` });
      return;
    }
    if (columns.length === 0) {
      errors.push({ line: i + 1, message: 'dmon: data row before the #Entity header' });
      return;
    }
    const entity = m[1] ?? '';
    const idTok = m[2] ?? '';
    if (!/^\d+$/.test(idTok)) {
      errors.push({ line: i + 1, message: `dmon: ${entity} id ${JSON.stringify(idTok)} is not an integer` });
      return;
    }
    const cells = (m[3] ?? '').trim().split(/\s+/).filter(Boolean);
    const values: Record<string, number | undefined> = {};
    let bad = false;
    // N/A is printed as one token; anything else must be numeric.
    columns.forEach((col, c) => {
      const cell = cells[c];
      if (cell === undefined || cell === 'N/A') {
        values[col] = undefined;
        return;
      }
      const n = Number(cell);
      if (cell === '' || Number.isNaN(n)) {
        bad = true;
        errors.push({ line: i + 1, message: `dmon: ${col} value ${JSON.stringify(cell)} is not a number` });
        values[col] = undefined;
        return;
      }
      values[col] = n;
    });
    if (bad && Object.values(values).every((v) => v === undefined)) return;
    latest.set(`${entity} ${idTok}`, { entity, id: Number(idTok), values });
  });
  return { columns, rows: [...latest.values()], errors };
}

// ---------------------------------------------------------------- health

/** One node of DCGM's output tree (the JSON printer's shape). */
export interface DcgmiOutputNode {
  value?: string;
  children?: Record<string, DcgmiOutputNode>;
  overflow?: string[];
}

export interface EntityHealth {
  /** `GPU`, `Switch`, `CPU`, `ConnectX` … as DCGM names the entity group. */
  group: string;
  id: string;
  health: HealthState;
  incidents: HealthIncident[];
}

export interface HealthResult {
  overall?: HealthState;
  entities: EntityHealth[];
  errors: ParseIssue[];
}

export function healthStateOf(text: string | undefined): HealthState | undefined {
  switch ((text ?? '').trim().toLowerCase()) {
    case 'healthy':
    case 'pass':
      return 'pass';
    case 'warning':
    case 'warn':
      return 'warn';
    case 'failure':
    case 'fail':
      return 'fail';
    default:
      return undefined;
  }
}

/** The tree printer's rows back into nodes: `| -> 0   | Warning |`, overflow rows have an empty label. */
export function parseDcgmiTree(text: string): Record<string, DcgmiOutputNode> {
  const root: Record<string, DcgmiOutputNode> = {};
  const stack: DcgmiOutputNode[] = [];
  let last: DcgmiOutputNode | undefined;
  for (const rawLine of text.split('\n')) {
    const line = rawLine.replace(/\r$/, '');
    if (!line.startsWith('| ')) continue;
    const sep = line.indexOf(' | ');
    if (sep < 0) continue; // header row spans both columns
    const left = line.slice(2, sep);
    const right = line
      .slice(sep + 3)
      .replace(/\s*\|\s*$/, '')
      .trim();
    if (left.trim() === '') {
      if (last && right !== '') last.overflow = [...(last.overflow ?? []), right];
      continue;
    }
    const trimmed = left.trimStart();
    const indent = left.length - trimmed.length;
    let level = 0;
    let label = trimmed.trimEnd();
    if (label.startsWith('-> ')) {
      level = Math.floor(indent / 3) + 1;
      label = label.slice(3).trim();
    }
    const node: DcgmiOutputNode = {};
    if (right !== '') node.value = right;
    if (level === 0) {
      root[label] = node;
    } else {
      const parent = stack[level - 1];
      if (!parent) continue;
      parent.children = { ...parent.children, [label]: node };
    }
    stack[level] = node;
    stack.length = level + 1;
    last = node;
  }
  return root;
}

function joinOverflow(parts: string[] | undefined): string {
  return (parts ?? []).join(' ').replace(/\s+/g, ' ').trim();
}

function systemIncidents(
  systemName: string,
  node: DcgmiOutputNode,
  fallback: HealthState | undefined,
): HealthIncident[] {
  // DCGM ≥2: {"PCIe system": {value: "Warning", overflow: [msg parts]}}; older/other printers nest
  // {"PCIe": {children: {Health: {value}, Error: {value}}}}. Accept both.
  const health = healthStateOf(node.value) ?? healthStateOf(node.children?.Health?.value) ?? fallback;
  const parts = [...(node.overflow ?? [])];
  const err = node.children?.Error ?? node.children?.Errors;
  if (err?.value) parts.push(err.value);
  if (err?.overflow) parts.push(...err.overflow);
  const message = joinOverflow(parts);
  if (health === undefined || health === 'pass') return [];
  const system = systemName.replace(/\s+system$/i, '');
  return [{ severity: health, system, message: message || `${system} ${health}` }];
}

function interpretHealth(body: Record<string, DcgmiOutputNode>, errors: ParseIssue[]): HealthResult {
  const overallNode = body['Overall Health'];
  const overall = healthStateOf(overallNode?.value);
  if (overallNode && overall === undefined) {
    errors.push({
      line: 0,
      message: `health: overall value ${JSON.stringify(overallNode.value)} is not a health state`,
    });
  }
  const entities: EntityHealth[] = [];
  for (const [group, groupNode] of Object.entries(body)) {
    if (group === 'Overall Health') continue;
    for (const [id, entityNode] of Object.entries(groupNode.children ?? {})) {
      const entityHealth = healthStateOf(entityNode.value);
      const incidents: HealthIncident[] = [];
      for (const [childName, child] of Object.entries(entityNode.children ?? {})) {
        if (childName === 'Errors') {
          for (const [sys, sysNode] of Object.entries(child.children ?? {})) {
            incidents.push(...systemIncidents(sys, sysNode, entityHealth));
          }
        } else {
          incidents.push(...systemIncidents(childName, child, entityHealth));
        }
      }
      const worst: HealthState =
        entityHealth ??
        (incidents.some((x) => x.severity === 'fail') ? 'fail' : incidents.length > 0 ? 'warn' : 'pass');
      if (entityHealth === undefined && entityNode.value !== undefined) {
        errors.push({
          line: 0,
          message: `health: ${group} ${id} value ${JSON.stringify(entityNode.value)} unknown`,
        });
      }
      entities.push({ group, id, health: worst, incidents });
    }
  }
  const out: HealthResult = { entities, errors };
  if (overall !== undefined) out.overall = overall;
  return out;
}

/** `dcgmi health -c -j` (JSON) or `dcgmi health -c` (box table). */
export function parseDcgmiHealth(text: string): HealthResult {
  const errors: ParseIssue[] = [];
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(trimmed);
    } catch (e) {
      errors.push({ line: 0, message: `health: invalid JSON (${(e as Error).message})` });
      return { entities: [], errors };
    }
    const body = (json as { body?: unknown } | null)?.body;
    if (!body || typeof body !== 'object') {
      errors.push({ line: 0, message: 'health: JSON has no "body" object' });
      return { entities: [], errors };
    }
    return interpretHealth(sanitizeTree(body as Record<string, unknown>), errors);
  }
  const tree = parseDcgmiTree(text);
  if (!tree['Overall Health']) {
    const msg = /^Error:.*$/m.exec(text)?.[0];
    errors.push({ line: 0, message: msg ? `health: ${msg}` : 'health: no "Overall Health" row found' });
  }
  return interpretHealth(tree, errors);
}

/** JSON from outside: keep only string values, string arrays and object children. */
function sanitizeTree(obj: Record<string, unknown>): Record<string, DcgmiOutputNode> {
  const out: Record<string, DcgmiOutputNode> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v && typeof v === 'object' && !Array.isArray(v)) out[k] = sanitizeNode(v as Record<string, unknown>);
  }
  return out;
}

function sanitizeNode(v: Record<string, unknown>): DcgmiOutputNode {
  const node: DcgmiOutputNode = {};
  if (typeof v.value === 'string' || typeof v.value === 'number') node.value = String(v.value);
  if (Array.isArray(v.overflow)) node.overflow = v.overflow.filter((x): x is string => typeof x === 'string');
  if (v.children && typeof v.children === 'object' && !Array.isArray(v.children)) {
    node.children = sanitizeTree(v.children as Record<string, unknown>);
  }
  return node;
}

// ---------------------------------------------------------------- combined

export interface DcgmiOutputs {
  discovery?: string;
  /** One or more dmon outputs (the AWS sample ran `-e 319` and `-e 230` separately). */
  dmon?: string[];
  health?: string;
  /** `dmesg | grep -i xid` style text. */
  kernel?: string;
}

export interface DcgmiGpus {
  gpus: GpuSample[];
  /** GPUs DCGM says it found ("8 GPUs found."). */
  declaredCount?: number;
  /** dmon's column short names (`XIDER`, `EDVDV` …), from the `#Entity` header: what the dmon output carried. */
  dmonColumns: string[];
  overallHealth?: HealthState;
  logLines: string[];
  /** Text the parsers could not read (non-GPU health incidents, odd kernel lines). */
  unparsed: string[];
  errors: ParseIssue[];
}

export function gpusFromDcgmi(outputs: DcgmiOutputs): DcgmiGpus {
  const byIndex = new Map<number, GpuSample>();
  const gpu = (index: number): GpuSample => {
    let g = byIndex.get(index);
    if (!g) {
      g = { index };
      byIndex.set(index, g);
    }
    return g;
  };
  const errors: ParseIssue[] = [];
  const unparsed: string[] = [];
  const logLines: string[] = [];
  const out: DcgmiGpus = { gpus: [], dmonColumns: [], logLines, unparsed, errors };

  if (outputs.discovery !== undefined) {
    const d = parseDcgmiDiscovery(outputs.discovery);
    errors.push(...d.errors);
    if (d.declaredCount !== undefined) out.declaredCount = d.declaredCount;
    for (const found of d.gpus) {
      const g = gpu(found.index);
      if (found.model) g.model = found.model;
      if (found.pciBusId) g.pciBusId = found.pciBusId;
      if (found.uuid) g.uuid = found.uuid;
    }
  }
  for (const text of outputs.dmon ?? []) {
    const d = parseDcgmiDmon(text);
    errors.push(...d.errors);
    for (const c of d.columns) if (!out.dmonColumns.includes(c)) out.dmonColumns.push(c);
    for (const row of d.rows) {
      if (row.entity !== 'GPU') continue;
      const g = gpu(row.id);
      for (const [col, value] of Object.entries(row.values)) {
        const field = DMON_FIELDS[col];
        if (!field || value === undefined) continue;
        (g as unknown as Record<string, number>)[field] = value;
      }
    }
  }
  if (outputs.health !== undefined) {
    const h = parseDcgmiHealth(outputs.health);
    errors.push(...h.errors);
    if (h.overall !== undefined) out.overallHealth = h.overall;
    for (const e of h.entities) {
      if (e.group === 'GPU' && /^\d+$/.test(e.id)) {
        const g = gpu(Number(e.id));
        g.health = e.health;
        if (e.incidents.length > 0) g.healthIncidents = e.incidents;
      } else {
        for (const inc of e.incidents)
          unparsed.push(
            `dcgmi health ${e.group} ${e.id}: ${inc.severity} ${inc.system ?? ''}: ${inc.message}`,
          );
      }
    }
    // The report lists only entities with incidents: every other known GPU passed.
    if (h.overall !== undefined) for (const g of byIndex.values()) g.health ??= 'pass';
  }
  if (outputs.kernel !== undefined) {
    const k = parseKernelXids(outputs.kernel);
    for (const x of k.xids) logLines.push(x.raw);
    for (const x of k.sxids) logLines.push(x.raw);
    unparsed.push(...k.unparsed);
  }
  out.gpus = [...byIndex.values()].sort((a, b) => a.index - b.index);
  return out;
}

/**
 * Pure renderers of what `dcgmi` and `dmesg` print inside an EKS dcgm-server pod, from the simulator's GPU
 * state. Layouts follow DCGM's printers as captured in test/fixtures/dcgmi-*.txt (box tables from
 * dcgmi/DcgmiOutput.cpp, dmon's 28-column layout, the health tree and its `-j` JSON), so the parsers in
 * src/collect/parse/ read the simulator exactly as they read a real node.
 */
import type { HealthState } from '../domain/gpu.js';
import type { SimGpu } from './sim-gpu.js';

// ---------------------------------------------------------------- discovery

const DISCOVERY_ID_WIDTH = 6;
const DISCOVERY_INFO_WIDTH = 68;

function boxLine(widths: number[], c = '-'): string {
  return `+${widths.map((w) => c.repeat(w + 2)).join('+')}+`;
}

/** `dcgmi discovery -l`: the GPUs DCGM can see (a GPU that fell off the bus is not listed). */
export function renderDiscovery(
  gpus: readonly Pick<SimGpu, 'index' | 'model' | 'pciBusId' | 'uuid'>[],
): string {
  const widths = [DISCOVERY_ID_WIDTH, DISCOVERY_INFO_WIDTH];
  const row = (id: string, info: string) =>
    `| ${id.padEnd(DISCOVERY_ID_WIDTH)} | ${info.padEnd(DISCOVERY_INFO_WIDTH)} |`;
  const out = [`${gpus.length} GPU${gpus.length === 1 ? '' : 's'} found.`, boxLine(widths)];
  out.push(row('GPU ID', 'Device Information'), boxLine(widths));
  for (const g of gpus) {
    out.push(row(String(g.index), `Name: ${g.model}`));
    out.push(row('', `PCI Bus ID: ${g.pciBusId}`));
    out.push(row('', `Device UUID: ${g.uuid}`));
    out.push(boxLine(widths));
  }
  out.push('0 NvSwitches found.', '+-----------+', '| Switch ID |', '+-----------+', '+-----------+');
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------- dmon

/** DCGM field id → dmon short name and how to read it from a simulated GPU. */
export const DMON_FIELD_TABLE: Readonly<Record<number, { short: string; read: (g: SimGpu) => number }>> = {
  140: { short: 'MMTMP', read: (g) => g.memoryTemperatureC },
  150: { short: 'TMPTR', read: (g) => g.temperatureC },
  155: { short: 'POWER', read: (g) => g.powerW },
  203: { short: 'GPUTL', read: (g) => g.utilizationPct },
  // 230 is the LAST XID code (sticky), not a count.
  230: { short: 'XIDER', read: (g) => g.xidLast },
  310: { short: 'ESVTL', read: (g) => g.eccSbeVolatile },
  311: { short: 'EDVTL', read: (g) => g.eccDbeVolatile },
  312: { short: 'ESATL', read: (g) => g.eccSbeAggregate },
  313: { short: 'EDATL', read: (g) => g.eccDbeAggregate },
  318: { short: 'ESVDV', read: (g) => g.eccSbeVolatile },
  319: { short: 'EDVDV', read: (g) => g.eccDbeVolatile },
};

const DMON_ENTITY_WIDTH = 10;
const DMON_COLUMN_WIDTH = 28;

export interface DmonRow {
  index: number;
  /** In column order; undefined prints as N/A. */
  values: (number | undefined)[];
}

/** `dcgmi dmon -e … -c N` from rows already read: a header, the `ID` line, then N samples of every GPU. */
export function renderDmon(shortNames: readonly string[], rows: readonly DmonRow[], count = 1): string {
  const header = `#Entity   ${shortNames.map((s) => s.padEnd(DMON_COLUMN_WIDTH)).join('')}`;
  const out = [header, 'ID'.padEnd(header.length)];
  for (let c = 0; c < count; c++) {
    for (const r of rows) {
      const cells = shortNames.map((_, i) => {
        const v = r.values[i];
        return (v === undefined || Number.isNaN(v) ? 'N/A' : formatDmonValue(v)).padEnd(DMON_COLUMN_WIDTH);
      });
      out.push(`${`GPU ${r.index}`.padEnd(DMON_ENTITY_WIDTH)}${cells.join('')}`);
    }
  }
  return `${out.join('\n')}\n`;
}

function formatDmonValue(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(3);
}

/** Unknown field ids are the caller's error; this reads the ones in DMON_FIELD_TABLE. */
export function dmonRowsFromSim(gpus: readonly SimGpu[], fieldIds: readonly number[]): DmonRow[] {
  return gpus.map((g) => ({
    index: g.index,
    values: fieldIds.map((id) => DMON_FIELD_TABLE[id]?.read(g)),
  }));
}

// ---------------------------------------------------------------- health

export interface SimHealthIncident {
  severity: 'warn' | 'fail';
  /** As DCGM names the subsystem: `PCIe system`, `Memory system`, `NVLink system` … */
  system: string;
  message: string;
}

export interface GpuHealthReport {
  index: number;
  incidents: SimHealthIncident[];
}

const SYSTEM_KEYWORDS: [RegExp, string][] = [
  [/pcie|replay/i, 'PCIe system'],
  [/nvlink/i, 'NVLink system'],
  [/memory|ecc|row remap|double-bit|page/i, 'Memory system'],
  [/therm|temperature/i, 'Thermal system'],
  [/power/i, 'Power system'],
  [/inforom/i, 'InfoROM system'],
  [/pmu/i, 'PMU system'],
  [/mcu/i, 'MCU system'],
  [/driver/i, 'Driver system'],
];

function systemOf(message: string | undefined): string {
  for (const [re, name] of SYSTEM_KEYWORDS) if (message && re.test(message)) return name;
  return 'SM system';
}

/**
 * What DCGM's health watches would report for one GPU: the injected health state (setHealth) plus the
 * incidents DCGM raises by itself from the counters (DCGM_FR_VOLATILE_DBE_DETECTED, DCGM_FR_ROW_REMAP_FAILURE).
 */
export function simHealthIncidents(g: SimGpu): SimHealthIncident[] {
  const out: SimHealthIncident[] = [];
  if (g.eccDbeVolatile > 0) {
    out.push({
      severity: 'fail',
      system: 'Memory system',
      message: `Detected ${g.eccDbeVolatile} volatile double-bit ECC error(s) in GPU ${g.index}.`,
    });
  }
  if (g.rowRemapFailure > 0) {
    out.push({
      severity: 'fail',
      system: 'Memory system',
      message: `GPU ${g.index} had uncorrectable memory errors and row remapping failed.`,
    });
  }
  if (g.health !== 'pass') {
    out.push({
      severity: g.health,
      system: systemOf(g.healthMessage),
      message:
        g.healthMessage ??
        `GPU ${g.index} health check reported ${g.health === 'fail' ? 'a failure' : 'a warning'}.`,
    });
  }
  return out;
}

export function healthReportsFromSim(gpus: readonly SimGpu[]): GpuHealthReport[] {
  return gpus.map((g) => ({ index: g.index, incidents: simHealthIncidents(g) }));
}

const STATE_TEXT: Record<HealthState, string> = { pass: 'Healthy', warn: 'Warning', fail: 'Failure' };

function worst(states: readonly HealthState[]): HealthState {
  if (states.includes('fail')) return 'fail';
  if (states.includes('warn')) return 'warn';
  return 'pass';
}

const HEALTH_LABEL_WIDTH = 25;
const HEALTH_VALUE_WIDTH = 56;
/** Messages continue on overflow rows; the fixture's breaks fall on word boundaries within 54 columns. */
const HEALTH_WRAP = 54;

export function wrapWords(text: string, width = HEALTH_WRAP): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line === '') line = word;
    else if (line.length + 1 + word.length <= width) line += ` ${word}`;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

interface EntityView {
  index: number;
  state: HealthState;
  incidents: SimHealthIncident[];
}

function entitiesWithIncidents(reports: readonly GpuHealthReport[]): EntityView[] {
  // DCGM lists only the entities that have something to say.
  return reports
    .filter((r) => r.incidents.length > 0)
    .map((r) => ({
      index: r.index,
      state: worst(r.incidents.map((i) => i.severity)),
      incidents: r.incidents,
    }));
}

/** `dcgmi health -c`: DCGM's tree printer (label column 28, value column 60). */
export function renderHealthTable(reports: readonly GpuHealthReport[]): string {
  const entities = entitiesWithIncidents(reports);
  const overall = worst(entities.map((e) => e.state));
  const border = `+${'-'.repeat(HEALTH_LABEL_WIDTH + 2)}+${'-'.repeat(HEALTH_VALUE_WIDTH + 2)}+`;
  const row = (label: string, value = '') =>
    `| ${label.padEnd(HEALTH_LABEL_WIDTH)} | ${value.padEnd(HEALTH_VALUE_WIDTH)} |`;
  const out = [
    border,
    `| ${'Health Monitor Report'.padEnd(HEALTH_LABEL_WIDTH + HEALTH_VALUE_WIDTH + 3)} |`,
    `+${'='.repeat(HEALTH_LABEL_WIDTH + 2)}+${'='.repeat(HEALTH_VALUE_WIDTH + 2)}+`,
    row('Overall Health', STATE_TEXT[overall]),
  ];
  if (entities.length > 0) out.push(row('GPU'));
  for (const e of entities) {
    out.push(row(`-> ${e.index}`, STATE_TEXT[e.state]));
    out.push(row('   -> Errors'));
    for (const inc of e.incidents) {
      out.push(row(`      -> ${inc.system}`, STATE_TEXT[inc.severity]));
      for (const part of wrapWords(inc.message)) out.push(row('', part));
    }
  }
  out.push(border);
  return `${out.join('\n')}\n`;
}

interface JsonNode {
  children?: Record<string, JsonNode>;
  overflow?: string[];
  value?: string;
}

/** `dcgmi health -c -j`: the same tree as JSON, in JsonCpp's styled layout (3-space indent, `"key" : value`). */
export function renderHealthJson(reports: readonly GpuHealthReport[]): string {
  const entities = entitiesWithIncidents(reports);
  const body: Record<string, JsonNode> = {
    'Overall Health': { value: STATE_TEXT[worst(entities.map((e) => e.state))] },
  };
  if (entities.length > 0) {
    const gpuChildren: Record<string, JsonNode> = {};
    for (const e of entities) {
      const errors: Record<string, JsonNode> = {};
      for (const inc of e.incidents) {
        // Two incidents of one system keep both messages, as DCGM appends them under one key.
        const prev = errors[inc.system];
        const overflow = [...(prev?.overflow ?? []), ...wrapWords(inc.message)];
        const severity = prev?.value === STATE_TEXT.fail ? 'fail' : inc.severity;
        errors[inc.system] = { overflow, value: STATE_TEXT[severity] };
      }
      gpuChildren[String(e.index)] = {
        children: { Errors: { children: errors } },
        value: STATE_TEXT[e.state],
      };
    }
    body.GPU = { children: gpuChildren };
  }
  const text = JSON.stringify({ body, header: ['Health Monitor Report'] }, null, 3);
  return `${text.replace(/^(\s*"(?:[^"\\]|\\.)*"):/gm, '$1 :')}\n`;
}

// ---------------------------------------------------------------- dmesg

/**
 * `dmesg` lines for the node's kernel log. The simulator keeps no boot-relative clock per line, so
 * timestamps are synthetic but monotonic and in dmesg's `[%5d.%06d]` layout.
 */
export function renderDmesg(kernelLog: readonly string[], bootSeconds = 12): string[] {
  return kernelLog.map((line, i) => {
    const micros = Math.round((bootSeconds + i * 1.25) * 1e6);
    const secs = Math.floor(micros / 1e6);
    const frac = String(micros % 1e6).padStart(6, '0');
    return `[${String(secs).padStart(5)}.${frac}] ${line}`;
  });
}

/**
 * Turns a text dump (a file given to `gpu-medic classify`) into a NodeSnapshot, whatever it holds:
 *
 * - `prometheus`: dcgm-exporter's /metrics text.
 * - `kernel`: `NVRM: Xid` / `SXid` lines, or a whole `dmesg` / `journalctl -k` (its non-GPU lines and the
 *   driver's informational lines are ignored, see kernel-log.ts).
 * - `dcgmi`: output of `dcgmi discovery -l`, `dcgmi dmon …`, `dcgmi health -c [-j]`, one after another,
 *   recognized by their own first lines ("N GPUs found.", "#Entity", "Health Monitor Report", a JSON object).
 * - `bundle`: section-marked text. A section starts at a marker line and runs to the next marker:
 *       `=== XID_DATA ===`             the AWS sample's own sections (NODE_INFO, GPU_COUNT, ECC_DATA, XID_DATA,
 *                                      XID_DETAILS, HEALTH_DATA, GPU_INFO)
 *       `=== dcgmi discovery -l ===`   a section named after its command (three or more `=` on each side)
 *       `### dcgmi dmon -e 230,319 -c 1`
 *   A section name picks the parser (discovery, dmon, health, dmesg/journalctl/xid, metrics/curl); an unknown
 *   one's body is detected by content. A line of `=` only is a separator. Text before the first marker is
 *   kept (as unparsed), except `#` comment lines. An AWS-sample bundle that lacks one of its sections (the
 *   command failed; the sample discarded stderr) says so in `snapshot.missingParts`.
 *
 * Nothing is dropped: text no parser reads goes to `unparsed` (the LLM reads it later), and malformed lines
 * are reported in `errors` with their line numbers.
 */
import { systemClock } from '../../domain/clock.js';
import type { GpuSample, MissingPart, NodeSnapshot } from '../../domain/gpu.js';
import { type DcgmiOutputs, gpusFromDcgmi } from './dcgmi.js';
import { gpusFromExporter } from './exporter.js';
import { hasKernelLogPrefix, looksLikeKernelLine, parseKernelXids } from './kernel-log.js';
import { assertTextInput, MetricsParseError, type ParseIssue, parsePrometheus } from './prometheus.js';

export const DumpFormats = ['prometheus', 'kernel', 'dcgmi', 'bundle', 'unknown'] as const;
export type DumpFormat = (typeof DumpFormats)[number];

const SECTION_EQ_RE = /^\s*={3,}\s*(.*?)\s*={3,}\s*$/;
const RULE_RE = /^\s*={3,}\s*$/;
const SECTION_HASH_RE = /^###\s+(.+?)\s*$/;
const SAMPLE_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})?\s+\S+(\s+-?\d+)?\s*$/;
const DCGMI_START_RE = /^(\s*\d+\s+GPUs?\s+found\.?\s*$|#\s*Entity\b|\|\s*Health Monitor Report\b)/;

function sectionMarker(line: string): string | undefined {
  const eq = SECTION_EQ_RE.exec(line);
  if (eq?.[1]) return eq[1];
  const hash = SECTION_HASH_RE.exec(line);
  if (hash?.[1]) return hash[1];
  return undefined;
}

export function detectFormat(text: string): DumpFormat {
  const lines = text.split('\n', 5000).map((l) => l.replace(/\r$/, ''));
  if (lines.some((l) => sectionMarker(l) !== undefined)) return 'bundle';
  const first = lines.find((l) => l.trim() !== '')?.trim() ?? '';
  if (lines.some((l) => DCGMI_START_RE.test(l))) return 'dcgmi';
  if (first.startsWith('{') && text.includes('"body"')) return 'dcgmi';
  let samples = 0;
  let other = 0;
  let kernel = 0;
  let prefixed = 0;
  let metaComments = 0;
  for (const l of lines) {
    const t = l.trim();
    if (t === '') continue;
    if (hasKernelLogPrefix(t)) prefixed++;
    if (looksLikeKernelLine(t)) kernel++;
    else if (t.startsWith('# HELP ') || t.startsWith('# TYPE ')) metaComments++;
    else if (t.startsWith('#')) continue;
    else if (SAMPLE_RE.test(t)) samples++;
    else other++;
  }
  if (kernel > 0 && kernel >= samples) return 'kernel';
  // A whole dmesg / journal without a single NVRM line: most of its lines carry the log's prefix.
  if (prefixed > 0 && prefixed * 2 >= samples + other) return 'kernel';
  if ((samples > 0 || metaComments > 0) && samples >= other) return 'prometheus';
  return 'unknown';
}

const NODE_INFO_RE = /^\s*={3,}\s*NODE_INFO\s*={3,}\s*$/i;

/**
 * The AWS sample logs one block per node, each opening with a line of `=` and `=== NODE_INFO ===`. A file
 * holding several (a whole run's log) is cut into one text per node; anything else comes back whole.
 * Text before the first block (comments) stays with the first.
 */
export function splitNodeBlocks(text: string): string[] {
  const lines = text.split('\n');
  const starts: number[] = [];
  lines.forEach((l, i) => {
    if (NODE_INFO_RE.test(l.replace(/\r$/, '')))
      starts.push(i > 0 && RULE_RE.test(lines[i - 1] ?? '') ? i - 1 : i);
  });
  if (starts.length < 2) return [text];
  return starts.map((start, k) => lines.slice(k === 0 ? 0 : start, starts[k + 1] ?? lines.length).join('\n'));
}

export interface BundleSection {
  command: string;
  body: string;
  /** 1-based line of the marker. */
  line: number;
}

export function splitBundle(text: string): { preamble: string; sections: BundleSection[] } {
  const lines = text.split('\n');
  const sections: BundleSection[] = [];
  const pre: string[] = [];
  let current: { command: string; line: number; body: string[] } | undefined;
  lines.forEach((rawLine, i) => {
    const line = rawLine.replace(/\r$/, '');
    // The AWS sample opens each node's block with a line of `=`: a separator, not content.
    if (RULE_RE.test(line)) return;
    const cmd = sectionMarker(line);
    if (cmd !== undefined) {
      if (current)
        sections.push({ command: current.command, line: current.line, body: current.body.join('\n') });
      current = { command: cmd, line: i + 1, body: [] };
      return;
    }
    if (current) current.body.push(line);
    else pre.push(line);
  });
  if (current) sections.push({ command: current.command, line: current.line, body: current.body.join('\n') });
  return { preamble: pre.join('\n'), sections };
}

type SectionKind = 'discovery' | 'dmon' | 'health' | 'kernel' | 'prometheus';

/**
 * The AWS sample's section names (lib/gpu-utils.sh): what each holds, and the dmon field a bare
 * `GPU <i> <value>` row carries (the sample strips dmon's `#Entity` header).
 */
const AWS_SECTIONS: Readonly<
  Record<string, { kind: SectionKind | 'node' | 'count'; dmonColumn?: string; part: string }>
> = {
  NODE_INFO: { kind: 'node', part: 'node_info' },
  GPU_COUNT: { kind: 'count', part: 'dcgmi_discovery_count' },
  ECC_DATA: { kind: 'dmon', dmonColumn: 'EDVDV', part: 'dcgmi_dmon_ecc' }, // field 319
  XID_DATA: { kind: 'dmon', dmonColumn: 'XIDER', part: 'dcgmi_dmon_xid' }, // field 230, the LAST XID code
  XID_DETAILS: { kind: 'kernel', part: 'kernel_log' },
  HEALTH_DATA: { kind: 'health', part: 'dcgmi_health' },
  GPU_INFO: { kind: 'discovery', part: 'dcgmi_discovery' },
};
/** Sections the sample always prints with content when its command worked (XID_DETAILS may be empty). */
const AWS_REQUIRED = ['GPU_COUNT', 'ECC_DATA', 'XID_DATA', 'HEALTH_DATA', 'GPU_INFO'] as const;

function kindOfCommand(command: string): SectionKind | undefined {
  const c = command.toLowerCase();
  if (c.includes('discovery')) return 'discovery';
  if (c.includes('dmon')) return 'dmon';
  if (c.includes('health')) return 'health';
  if (/dmesg|journalctl|xid|kern/.test(c)) return 'kernel';
  if (/metrics|curl|wget|:9400|prometheus|exporter/.test(c)) return 'prometheus';
  return undefined;
}

const BOX_BORDER_RE = /^\+[-=+]+\s*$/;
const HEALTH_REPORT_RE = /^\|\s*Health Monitor Report\b/;

/** Splits unmarked dcgmi output into the commands' blocks by their first lines. */
function segmentDcgmi(text: string): { kind: SectionKind | 'text'; body: string }[] {
  const out: { kind: SectionKind | 'text'; body: string[] }[] = [];
  let cur: { kind: SectionKind | 'text'; body: string[] } = { kind: 'text', body: [] };
  out.push(cur);
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  // The `dcgmi health` box opens with a `+---+` border before its "Health Monitor Report" title row: the
  // border belongs to the report, not to the text or dmon block before it.
  let borderOpenedReport = false;
  lines.forEach((line, i) => {
    let start: SectionKind | undefined;
    if (/^\s*\d+\s+GPUs?\s+found/.test(line)) start = 'discovery';
    else if (/^#\s*Entity\b/.test(line)) start = 'dmon';
    else if (BOX_BORDER_RE.test(line) && HEALTH_REPORT_RE.test(lines[i + 1] ?? '')) start = 'health';
    else if (HEALTH_REPORT_RE.test(line)) {
      if (!borderOpenedReport) start = 'health';
    } else if (/^\s*\{\s*$/.test(line) && cur.kind !== 'health') start = 'health';
    borderOpenedReport = start === 'health' && BOX_BORDER_RE.test(line);
    if (start) {
      cur = { kind: start, body: [] };
      out.push(cur);
    }
    if (looksLikeKernelLine(line)) {
      out.push({ kind: 'kernel', body: [line] });
      return;
    }
    cur.body.push(line);
  });
  return out.map((s) => ({ kind: s.kind, body: s.body.join('\n') }));
}

export interface ParseDumpOptions {
  node?: string;
  source?: 'file';
  takenAt?: number;
  maxBytes?: number;
}

export interface ParsedDump {
  format: DumpFormat;
  snapshot: NodeSnapshot;
  errors: ParseIssue[];
}

interface Parts {
  prometheus: string[];
  dcgmi: DcgmiOutputs;
  kernel: string[];
  unparsed: string[];
  missing: MissingPart[];
  /** NODE_INFO's `Node:` line. */
  hostname?: string;
  /** GPU_COUNT: the GPUs `dcgmi discovery -l` said it found. */
  declaredCount?: number;
}

function addDcgmi(parts: Parts, kind: SectionKind, body: string): void {
  if (kind === 'discovery') parts.dcgmi.discovery = [parts.dcgmi.discovery, body].filter(Boolean).join('\n');
  else if (kind === 'dmon') parts.dcgmi.dmon = [...(parts.dcgmi.dmon ?? []), body];
  else if (kind === 'health') parts.dcgmi.health = body;
  else if (kind === 'kernel') parts.kernel.push(body);
  else parts.prometheus.push(body);
}

function nonBlank(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim() !== '');
}

function mergeGpus(into: Map<string, GpuSample>, gpus: GpuSample[]): void {
  for (const g of gpus) {
    const key = `${g.index}\u0000${g.uuid ?? ''}`;
    const sameIndex = [...into.entries()].find(
      ([, x]) => x.index === g.index && (!x.uuid || !g.uuid || x.uuid === g.uuid),
    );
    if (sameIndex) {
      const [k, prev] = sameIndex;
      into.set(k, { ...prev, ...stripUndefined(g) });
    } else {
      into.set(key, g);
    }
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Throws MetricsParseError for input that is empty, binary or over `maxBytes` (default 16 MiB). */
export function parseDump(text: string, opts: ParseDumpOptions = {}): ParsedDump {
  assertTextInput(text, opts.maxBytes, 'dump');
  const format = detectFormat(text);
  const parts: Parts = { prometheus: [], dcgmi: {}, kernel: [], unparsed: [], missing: [] };
  if (format === 'prometheus') parts.prometheus.push(text);
  else if (format === 'kernel') parts.kernel.push(text);
  else if (format === 'dcgmi') {
    for (const seg of segmentDcgmi(text)) {
      if (seg.kind === 'text') parts.unparsed.push(...nonBlank(seg.body).filter((l) => !l.startsWith('#')));
      else addDcgmi(parts, seg.kind, seg.body);
    }
  } else if (format === 'bundle') {
    const { preamble, sections } = splitBundle(text);
    // `#` lines before the first marker are the dump's own comments (where it came from), not GPU output.
    parts.unparsed.push(...nonBlank(preamble).filter((l) => !l.startsWith('#')));
    const awsSeen = new Map<string, boolean>();
    for (const s of sections) {
      const aws = AWS_SECTIONS[s.command.toUpperCase()];
      if (aws) {
        const name = s.command.toUpperCase();
        const body = nonBlank(s.body);
        awsSeen.set(name, (awsSeen.get(name) ?? false) || body.length > 0);
        if (body.length === 0) continue;
        if (aws.kind === 'node') {
          const m = /^\s*Node:\s*(\S+)/m.exec(s.body);
          if (m?.[1]) parts.hostname ??= m[1];
          else parts.unparsed.push(`[${s.command}]`, ...body);
        } else if (aws.kind === 'count') {
          const n = body.length === 1 ? /^\s*(\d+)\s*$/.exec(body[0] ?? '')?.[1] : undefined;
          if (n === undefined) parts.unparsed.push(`[${s.command}]`, ...body);
          else parts.declaredCount = Number(n);
        } else if (aws.kind === 'dmon' && aws.dmonColumn) {
          // A header already there (a dump that kept it) takes over from ours: the parser reads the last one.
          addDcgmi(parts, 'dmon', `#Entity   ${aws.dmonColumn}\n${s.body}`);
        } else {
          addDcgmi(parts, aws.kind, s.body);
        }
        continue;
      }
      let kind = kindOfCommand(s.command);
      if (!kind) {
        const inner = detectFormat(s.body);
        if (inner === 'prometheus') kind = 'prometheus';
        else if (inner === 'kernel') kind = 'kernel';
        else if (inner === 'dcgmi') {
          for (const seg of segmentDcgmi(s.body)) {
            if (seg.kind === 'text') parts.unparsed.push(...nonBlank(seg.body));
            else addDcgmi(parts, seg.kind, seg.body);
          }
          continue;
        }
      }
      if (kind) addDcgmi(parts, kind, s.body);
      else if (nonBlank(s.body).length > 0) parts.unparsed.push(`[${s.command}]`, ...nonBlank(s.body));
    }
    if (awsSeen.size > 0) {
      for (const name of AWS_REQUIRED) {
        const seen = awsSeen.get(name);
        if (seen) continue;
        parts.missing.push({
          part: AWS_SECTIONS[name]?.part ?? name.toLowerCase(),
          reason:
            seen === undefined
              ? `the bundle has no ${name} section`
              : `the ${name} section is empty (its command failed; the AWS sample discards stderr)`,
        });
      }
    }
  } else {
    parts.unparsed.push(...nonBlank(text));
  }

  const errors: ParseIssue[] = [];
  const gpus = new Map<string, GpuSample>();
  const logLines: string[] = [];
  let hostname: string | undefined = parts.hostname;
  let parseFailure: string | undefined;

  for (const body of parts.prometheus) {
    try {
      const parsed = parsePrometheus(body, opts.maxBytes !== undefined ? { maxBytes: opts.maxBytes } : {});
      errors.push(...parsed.errors);
      const ex = gpusFromExporter(parsed);
      errors.push(...ex.errors);
      hostname ??= ex.hostname;
      mergeGpus(gpus, ex.gpus);
    } catch (e) {
      if (!(e instanceof MetricsParseError)) throw e;
      parseFailure = e.message;
      errors.push({ line: 0, message: e.message });
    }
  }
  const hasDcgmi =
    parts.dcgmi.discovery !== undefined || parts.dcgmi.dmon !== undefined || parts.dcgmi.health !== undefined;
  if (hasDcgmi) {
    const d = gpusFromDcgmi(parts.dcgmi);
    errors.push(...d.errors);
    parts.unparsed.push(...d.unparsed);
    mergeGpus(gpus, d.gpus);
  }
  for (const body of parts.kernel) {
    const k = parseKernelXids(body);
    for (const x of k.xids) logLines.push(x.raw);
    for (const x of k.sxids) logLines.push(x.raw);
    parts.unparsed.push(...k.unparsed);
  }

  if (parts.declaredCount !== undefined && gpus.size > 0 && parts.declaredCount !== gpus.size) {
    errors.push({
      line: 0,
      message: `GPU_COUNT says ${parts.declaredCount} GPU(s) but the other sections list ${gpus.size}`,
    });
  }
  const snapshot: NodeSnapshot = {
    node: opts.node ?? hostname ?? 'unknown',
    takenAt: opts.takenAt ?? systemClock.now(),
    source: opts.source ?? 'file',
    gpus: [...gpus.values()].sort((a, b) => a.index - b.index),
  };
  if (logLines.length > 0) snapshot.logLines = logLines;
  if (parts.unparsed.length > 0) snapshot.unparsed = parts.unparsed;
  if (parts.missing.length > 0) snapshot.missingParts = parts.missing;
  if (parseFailure !== undefined && snapshot.gpus.length === 0) {
    snapshot.error = { kind: 'parse', message: parseFailure };
  }
  return { format, snapshot, errors };
}

export function snapshotFromDump(text: string, opts: ParseDumpOptions = {}): NodeSnapshot {
  return parseDump(text, opts).snapshot;
}

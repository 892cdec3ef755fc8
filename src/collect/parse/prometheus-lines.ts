/**
 * The line level of the Prometheus text parser (parse/prometheus.ts): one sample or comment line at a time,
 * with the per-scrape caches that make repeated names and label blocks cheap. Split out so the whole-text
 * and the streaming entry points share one implementation.
 */
import type { MetricFamily, Sample } from './prometheus.js';

export const MetricTypes = ['counter', 'gauge', 'histogram', 'summary', 'untyped'] as const;
export type MetricType = (typeof MetricTypes)[number];

export const CH_TAB = 9;
export const CH_SPACE = 32;
const CH_QUOTE = 34;
export const CH_HASH = 35;
const CH_COMMA = 44;
const CH_EQ = 61;
const CH_BACKSLASH = 92;
const CH_LBRACE = 123;
const CH_RBRACE = 125;

function isNameStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c === 58;
}
function isNameChar(c: number): boolean {
  return isNameStart(c) || (c >= 48 && c <= 57);
}
function isLabelStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95;
}
function isLabelChar(c: number): boolean {
  return isLabelStart(c) || (c >= 48 && c <= 57);
}

/** Go's strconv.ParseFloat accepts these spellings; JavaScript's Number() does not know `Inf`. */
export function parseFloatToken(token: string): number | undefined {
  if (token.length === 0) return undefined;
  const lower = token.toLowerCase();
  switch (lower) {
    case 'nan':
    case '+nan':
    case '-nan':
      return Number.NaN;
    case 'inf':
    case '+inf':
    case 'infinity':
    case '+infinity':
      return Number.POSITIVE_INFINITY;
    case '-inf':
    case '-infinity':
      return Number.NEGATIVE_INFINITY;
  }
  const n = Number(token);
  // Number() accepts forms ParseFloat rejects ("0x1f", "0b1", "Infinity" handled above); reject the odd ones.
  if (Number.isNaN(n)) return undefined;
  const c = token.charCodeAt(token.length > 1 && (token[0] === '-' || token[0] === '+') ? 1 : 0);
  if (c === 48 && token.length > 1 && /^[+-]?0[xXbBoO]/.test(token)) return undefined;
  return n;
}

/**
 * Label and metric names repeat on every line. Reusing one string per name (instead of a fresh slice)
 * lets V8 skip re-internalizing each object key — the dominant cost of parsing a scrape otherwise.
 */
interface NameList {
  names: string[];
  /** Index of the last hit: lines repeat the same names in the same order, so try its neighbours first. */
  last: number;
}

export interface ScrapeCache {
  labelNames: NameList;
  metricNames: NameList;
  /**
   * Parsed label sets keyed by their raw `{…}` text. A dcgm-exporter scrape repeats each GPU's label
   * block on every family (8 distinct blocks over ~300 samples), so most lines skip label parsing and
   * share one labels object: samples' labels are read-only.
   */
  labelSets: Map<string, number>;
  /** The same label sets in first-seen order, and the index of the last one used: see matchLabelSet. */
  labelSetList: { key: string; labels: Record<string, string> }[];
  lastLabelSet: number;
}

const MAX_CACHED_NAMES = 256;
const MAX_CACHED_LABEL_SETS = 4096;

function internName(line: string, start: number, end: number, list: NameList): string {
  const len = end - start;
  const names = list.names;
  const same = names[list.last];
  if (same !== undefined && same.length === len && line.slice(start, end) === same) return same;
  const next = names[list.last + 1];
  if (next !== undefined && next.length === len && line.slice(start, end) === next) {
    list.last++;
    return next;
  }
  for (let k = names.length - 1; k >= 0; k--) {
    const c = names[k] as string;
    if (c.length === len && line.slice(start, end) === c) {
      list.last = k;
      return c;
    }
  }
  // Cached for the whole scrape: a copy, so a streamed chunk is not kept alive by its names.
  const name = detach(line.slice(start, end));
  if (names.length < MAX_CACHED_NAMES) {
    names.push(name);
    list.last = names.length - 1;
  }
  return name;
}

/** The previous line's metric name, or the next one seen, when the line starts with it: no char scan. */
function predictName(line: string, list: NameList): string | undefined {
  const same = list.names[list.last];
  if (same !== undefined && isNameEnd(line, same) && line.slice(0, same.length) === same) return same;
  const next = list.names[list.last + 1];
  if (next !== undefined && isNameEnd(line, next) && line.slice(0, next.length) === next) {
    list.last++;
    return next;
  }
  return undefined;
}

function isNameEnd(line: string, name: string): boolean {
  return line.length > name.length && !isNameChar(line.charCodeAt(name.length));
}

/**
 * A copy that does not share the scrape's memory: V8 keeps a slice's whole parent string alive, so one
 * UUID kept in a snapshot would pin its node's ~90 KB scrape (450 MB over a 5,000-node scan). Strings
 * under 13 characters are never slices.
 */
function detach(s: string): string {
  return s.length > 12 ? ` ${s}`.slice(1) : s;
}

/** Parses `{…}` starting at `i` (the brace); returns the labels and the index after `}`, or an error. */
function parseLabels(
  line: string,
  i: number,
  name: string,
  cache: ScrapeCache,
): { labels: Record<string, string>; end: number } | string {
  const n = line.length;
  const labels: Record<string, string> = {};
  i++;
  for (;;) {
    while (i < n && (line.charCodeAt(i) === CH_SPACE || line.charCodeAt(i) === CH_TAB)) i++;
    if (i >= n) return `unterminated label set in ${name}`;
    if (line.charCodeAt(i) === CH_RBRACE) return { labels, end: i + 1 };
    const ls = i;
    if (!isLabelStart(line.charCodeAt(i))) return `invalid label name in ${name} at column ${i + 1}`;
    i++;
    while (i < n && isLabelChar(line.charCodeAt(i))) i++;
    const lname = internName(line, ls, i, cache.labelNames);
    while (i < n && (line.charCodeAt(i) === CH_SPACE || line.charCodeAt(i) === CH_TAB)) i++;
    if (line.charCodeAt(i) !== CH_EQ) return `expected '=' after label ${lname} in ${name}`;
    i++;
    while (i < n && (line.charCodeAt(i) === CH_SPACE || line.charCodeAt(i) === CH_TAB)) i++;
    if (line.charCodeAt(i) !== CH_QUOTE) return `expected '"' to open value of label ${lname} in ${name}`;
    i++;
    // Fast path: jump to the closing quote with indexOf; only walk the chars when an escape is present.
    let start = i;
    let value = '';
    let closed = false;
    const q = line.indexOf('"', i);
    if (q !== -1) {
      const bs = line.indexOf('\\', i);
      if (bs === -1 || bs > q) {
        value = line.slice(i, q);
        i = q + 1;
        closed = true;
      }
    }
    while (!closed && i < n) {
      const c = line.charCodeAt(i);
      if (c === CH_QUOTE) {
        value += line.slice(start, i);
        i++;
        closed = true;
        break;
      }
      if (c === CH_BACKSLASH) {
        value += line.slice(start, i);
        const e = line.charCodeAt(i + 1);
        if (e === CH_BACKSLASH) value += '\\';
        else if (e === CH_QUOTE) value += '"';
        else if (e === 110 /* n */) value += '\n';
        else if (Number.isNaN(e)) return `unterminated escape in label ${lname} of ${name}`;
        // Prometheus keeps an unknown escape verbatim (backslash included).
        else value += `\\${line[i + 1]}`;
        i += 2;
        start = i;
        continue;
      }
      i++;
    }
    if (!closed) return `unterminated value of label ${lname} in ${name}`;
    if (labels[lname] !== undefined) return `duplicate label ${lname} in ${name}`;
    labels[lname] = detach(value);
    while (i < n && (line.charCodeAt(i) === CH_SPACE || line.charCodeAt(i) === CH_TAB)) i++;
    const sep = line.charCodeAt(i);
    if (sep === CH_COMMA) {
      i++;
      continue;
    }
    if (sep === CH_RBRACE) return { labels, end: i + 1 };
    return `expected ',' or '}' after label ${lname} in ${name}`;
  }
}

/**
 * Families list their GPUs in the same order, so the label set after the previous one (or the first,
 * when a family starts over) is almost always this line's: one string comparison, no hashing. The
 * block is compared up to the line's last '}', the end a valid block has.
 */
function matchLabelSet(
  line: string,
  i: number,
  end: number,
  cache: ScrapeCache,
): Record<string, string> | undefined {
  const list = cache.labelSetList;
  const len = end - i;
  const next = list[cache.lastLabelSet + 1];
  // String equality is a memory compare; startsWith(…, i) is far slower on V8 for long strings.
  if (next && next.key.length === len && line.slice(i, end) === next.key) {
    cache.lastLabelSet++;
    return next.labels;
  }
  const first = list[0];
  if (first && first.key.length === len && line.slice(i, end) === first.key) {
    cache.lastLabelSet = 0;
    return first.labels;
  }
  return undefined;
}

/** Returns the sample, or an error message for the line. */
export function parseSampleLine(line: string, lineNo: number, cache: ScrapeCache): Sample | string {
  const n = line.length;
  let i = 0;
  if (!isNameStart(line.charCodeAt(0))) return `invalid metric name at start of line: ${preview(line)}`;
  let name = predictName(line, cache.metricNames);
  if (name !== undefined) i = name.length;
  else {
    i = 1;
    while (i < n && isNameChar(line.charCodeAt(i))) i++;
    name = internName(line, 0, i, cache.metricNames);
  }
  let labels: Record<string, string> | undefined;
  while (i < n && (line.charCodeAt(i) === CH_SPACE || line.charCodeAt(i) === CH_TAB)) i++;
  if (i < n && line.charCodeAt(i) === CH_LBRACE) {
    // Nothing after a valid label block (value, timestamp) contains '}', so its end is the last one.
    const close = line.lastIndexOf('}');
    const predicted = close > i ? matchLabelSet(line, i, close + 1, cache) : undefined;
    const key = close > i && !predicted ? line.slice(i, close + 1) : undefined;
    if (predicted) {
      labels = predicted;
      i = close + 1;
    } else if (key !== undefined && cache.labelSets.has(key)) {
      cache.lastLabelSet = cache.labelSets.get(key) as number;
      labels = cache.labelSetList[cache.lastLabelSet]?.labels ?? {};
      i = close + 1;
    } else {
      const r = parseLabels(line, i, name, cache);
      if (typeof r === 'string') return r;
      labels = r.labels;
      // Cache only when the parser ended where the key does (a '}' inside a quoted value did not fool it).
      if (key !== undefined && r.end === close + 1 && cache.labelSets.size < MAX_CACHED_LABEL_SETS) {
        const kept = detach(key);
        cache.labelSets.set(kept, cache.labelSetList.length);
        cache.labelSetList.push({ key: kept, labels });
        cache.lastLabelSet = cache.labelSetList.length - 1;
      }
      i = r.end;
    }
  } else labels = {};
  while (i < n && (line.charCodeAt(i) === CH_SPACE || line.charCodeAt(i) === CH_TAB)) i++;
  if (i >= n) return `missing value for ${name}`;
  const vs = i;
  // Fast path for plain decimals (`42`, `55.125`): digits accumulate into an integer and one division
  // by a power of ten gives the same correctly rounded double as Number(), while both stay exact.
  let mantissa = 0;
  let digits = 0;
  let fraction = -1;
  let plain = true;
  while (i < n) {
    const c = line.charCodeAt(i);
    if (c === CH_SPACE || c === CH_TAB) break;
    if (c >= 48 && c <= 57) {
      mantissa = mantissa * 10 + (c - 48);
      digits++;
      if (fraction >= 0) fraction++;
    } else if (c === 46 /* . */ && fraction < 0) fraction = 0;
    else plain = false;
    i++;
  }
  let value: number | undefined;
  if (plain && digits > 0 && digits <= 15)
    value = fraction > 0 ? mantissa / (POW10[fraction] as number) : mantissa;
  else value = parseFloatToken(line.slice(vs, i));
  if (value === undefined) return `invalid value ${JSON.stringify(line.slice(vs, i))} for ${name}`;
  while (i < n && (line.charCodeAt(i) === CH_SPACE || line.charCodeAt(i) === CH_TAB)) i++;
  if (i < n) {
    const ts = i;
    while (i < n && line.charCodeAt(i) !== CH_SPACE && line.charCodeAt(i) !== CH_TAB) i++;
    const tok = line.slice(ts, i);
    if (!/^-?\d+$/.test(tok)) return `invalid timestamp ${JSON.stringify(tok)} for ${name}`;
    while (i < n && (line.charCodeAt(i) === CH_SPACE || line.charCodeAt(i) === CH_TAB)) i++;
    if (i < n) return `unexpected text after timestamp for ${name}`;
    return { name, labels, value, timestampMs: Number(tok), line: lineNo };
  }
  return { name, labels, value, line: lineNo };
}

/** 10^0 … 10^15, all exact doubles. */
const POW10: readonly number[] = Array.from({ length: 16 }, (_, k) => 10 ** k);

function preview(s: string): string {
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}…` : s);
}

const SUFFIXES: Record<string, readonly string[]> = {
  histogram: ['_bucket', '_sum', '_count'],
  summary: ['_sum', '_count'],
};

export function familyNameOf(sampleName: string, families: Map<string, MetricFamily>): string {
  if (families.has(sampleName)) return sampleName;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (sampleName.endsWith(suffix)) {
      const base = sampleName.slice(0, -suffix.length);
      const fam = families.get(base);
      if (fam && SUFFIXES[fam.type]?.includes(suffix)) return base;
    }
  }
  return sampleName;
}

export function familyFor(families: Map<string, MetricFamily>, name: string): MetricFamily {
  let fam = families.get(name);
  if (!fam) {
    const kept = detach(name);
    fam = { name: kept, type: 'untyped', samples: [] };
    families.set(kept, fam);
  }
  return fam;
}

/** `# HELP name text` / `# TYPE name type`; any other comment is ignored. Returns an error message or undefined. */
export function parseComment(line: string, families: Map<string, MetricFamily>): string | undefined {
  let i = 1;
  const n = line.length;
  while (i < n && (line.charCodeAt(i) === CH_SPACE || line.charCodeAt(i) === CH_TAB)) i++;
  const isHelp =
    line.startsWith('HELP', i) && (line.charCodeAt(i + 4) === CH_SPACE || line.charCodeAt(i + 4) === CH_TAB);
  const isType =
    line.startsWith('TYPE', i) && (line.charCodeAt(i + 4) === CH_SPACE || line.charCodeAt(i + 4) === CH_TAB);
  if (!isHelp && !isType) return undefined;
  i += 4;
  while (i < n && (line.charCodeAt(i) === CH_SPACE || line.charCodeAt(i) === CH_TAB)) i++;
  const ns = i;
  if (!isNameStart(line.charCodeAt(i))) return `invalid metric name in ${isHelp ? 'HELP' : 'TYPE'} line`;
  while (i < n && isNameChar(line.charCodeAt(i))) i++;
  const name = line.slice(ns, i);
  while (i < n && (line.charCodeAt(i) === CH_SPACE || line.charCodeAt(i) === CH_TAB)) i++;
  const rest = line.slice(i);
  const fam = familyFor(families, name);
  if (isHelp) {
    fam.help = detach(
      rest.includes('\\') ? rest.replace(/\\(\\|n)/g, (_m, e: string) => (e === 'n' ? '\n' : '\\')) : rest,
    );
    return undefined;
  }
  const type = rest.trimEnd();
  if (!(MetricTypes as readonly string[]).includes(type))
    return `unknown metric type ${JSON.stringify(type)} for ${name}`;
  fam.type = type as MetricType;
  return undefined;
}

/** A fresh cache for one scrape. */
export function newScrapeCache(): ScrapeCache {
  return {
    labelNames: { names: [], last: -1 },
    metricNames: { names: [], last: -1 },
    labelSets: new Map(),
    labelSetList: [],
    lastLabelSet: -1,
  };
}

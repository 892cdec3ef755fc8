/**
 * Prometheus text exposition format 0.0.4, parsed by a single pass over each line with charCodeAt —
 * no regex per line, one object per sample, each distinct label block parsed once per scrape. It runs
 * for every node on every scan, so it must stay cheap.
 *
 * A malformed line becomes an entry in `errors` (with its 1-based line number) and parsing goes on: one bad
 * line never hides the rest of a scrape. Input that is not exposition at all (empty, HTML, JSON, binary) or
 * larger than `maxBytes` throws `MetricsParseError`, because there is nothing to salvage from it.
 *
 * `ExpositionParser` takes the text in chunks as it arrives (a scrape's HTTP body): it keeps only the
 * partial last line between chunks, never the whole payload, and gives exactly what `parsePrometheus` gives
 * for the same text, however it is split.
 */
import { StringDecoder } from 'node:string_decoder';
import {
  CH_HASH,
  CH_SPACE,
  CH_TAB,
  familyFor,
  familyNameOf,
  type MetricType,
  newScrapeCache,
  parseComment,
  parseSampleLine,
} from './prometheus-lines.js';

export { type MetricType, MetricTypes, parseFloatToken } from './prometheus-lines.js';

export interface Sample {
  name: string;
  /** Read-only: samples whose label text is identical share one object. */
  labels: Record<string, string>;
  value: number;
  timestampMs?: number;
  /** 1-based line number in the input. */
  line: number;
}

export interface MetricFamily {
  name: string;
  type: MetricType;
  help?: string;
  samples: Sample[];
}

export interface ParseIssue {
  line: number;
  message: string;
}

export interface ParsedExposition {
  /** Every sample in input order. */
  samples: Sample[];
  /** Samples grouped by family (histogram/summary suffixes fold into their declared family). */
  families: Map<string, MetricFamily>;
  errors: ParseIssue[];
}

export interface ParsePrometheusOptions {
  /**
   * ExpositionParser only: each sample goes here as it is parsed and is not kept, so `end()` returns no
   * samples (and families without theirs). A streamed scrape then holds no sample list while it arrives.
   */
  onSample?: (sample: Sample) => void;
  /** Largest accepted input, in UTF-8 bytes. Default 16 MiB. */
  maxBytes?: number;
  /** Stop recording line errors after this many (a summary entry says how many were dropped). Default 1000. */
  maxErrors?: number;
}

export const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;

export class MetricsParseError extends Error {
  readonly code = 'METRICS_PARSE';
  constructor(message: string) {
    super(message);
    this.name = 'MetricsParseError';
  }
}

/** The facts the input checks need, gathered from a whole text or a stream. */
interface InputFacts {
  /** UTF-16 units. */
  chars: number;
  /** UTF-8 bytes, or undefined when not counted (then `chars * 3 <= maxBytes` must hold). */
  bytes?: number;
  /** Anything but whitespace (String.prototype.trim's set) anywhere. */
  content: boolean;
  /** The first 4,096 characters. */
  head: string;
}

function checkInput(facts: InputFacts, maxBytes: number, what: string): void {
  // Cheap bounds first: every UTF-16 unit is 1–3 UTF-8 bytes.
  const size =
    facts.chars > maxBytes || facts.chars * 3 <= maxBytes ? facts.chars : (facts.bytes ?? facts.chars * 3);
  if (size > maxBytes)
    throw new MetricsParseError(`${what} is ${size} bytes, over the ${maxBytes}-byte limit`);
  if (!facts.content) throw new MetricsParseError(`${what} is empty`);
  const { head } = facts;
  const probe = Math.min(head.length, HEAD_CHARS);
  let control = 0;
  for (let j = 0; j < probe; j++) {
    const c = head.charCodeAt(j);
    if (c === 0) throw new MetricsParseError(`${what} is binary (contains NUL bytes)`);
    if ((c < 32 && c !== CH_TAB && c !== 10 && c !== 13) || c === 0xfffd) control++;
  }
  if (control > 8 && control * 20 > probe) {
    throw new MetricsParseError(`${what} is binary (too many control characters)`);
  }
}

const HEAD_CHARS = 4096;

/** Throws for input no text parser should read: over `maxBytes`, binary, or empty. */
export function assertTextInput(text: string, maxBytes: number = DEFAULT_MAX_BYTES, what = 'input'): void {
  if (typeof text !== 'string') throw new MetricsParseError(`${what} is not text`);
  const chars = text.length;
  const bytes = chars <= maxBytes && chars * 3 > maxBytes ? Buffer.byteLength(text, 'utf8') : undefined;
  checkInput({ chars, bytes, content: text.trim() !== '', head: text.slice(0, HEAD_CHARS) }, maxBytes, what);
}

/** Index of the first character that is not blank (space, tab, CR, LF, BOM), or -1. */
function firstNonBlank(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== CH_SPACE && c !== CH_TAB && c !== 10 && c !== 13 && c !== 0xfeff) return i;
  }
  return -1;
}

/** Throws when the text is plainly something other than exposition (`first`: its first non-blank char). */
function assertLooksLikeExposition(first: number | undefined): void {
  if (first === undefined) throw new MetricsParseError('metrics input is empty');
  if (first === 60 /* < */) {
    throw new MetricsParseError('metrics input looks like HTML/XML, not Prometheus text exposition');
  }
  if (first === 123 /* { */ || first === 91 /* [ */) {
    throw new MetricsParseError('metrics input looks like JSON, not Prometheus text exposition');
  }
}

/**
 * Parses exposition text fed in chunks (strings, or UTF-8 bytes split anywhere, even inside a character).
 * Between chunks it holds the partial last line and the first 4,096 characters (for the input checks),
 * never the payload. `end()` runs the checks `parsePrometheus` runs first, in the same order, and throws
 * the same errors; once the input is over `maxBytes` the rest is only counted.
 */
export class ExpositionParser {
  private readonly maxBytes: number;
  private readonly maxErrors: number;
  private readonly samples: Sample[] = [];
  private readonly families = new Map<string, MetricFamily>();
  private readonly errors: ParseIssue[] = [];
  private readonly cache = newScrapeCache();
  private dropped = 0;
  private meaningful = 0;
  private lineNo = 0;
  // The family of the previous sample: consecutive samples share one. A comment line may declare a
  // family that changes where a suffixed name folds, so comments reset it.
  private lastName: string | undefined;
  private lastFamily: MetricFamily | undefined;
  /** The line still open at the end of the last chunk (its own copy, not a slice of the chunk). */
  private pending = '';
  private head = '';
  private chars = 0;
  private bytes = 0;
  private bytesCounted = true;
  private content = false;
  private first: number | undefined;
  private decoder: StringDecoder | undefined;
  private ended = false;
  private readonly onSample: ((sample: Sample) => void) | undefined;

  constructor(opts: ParsePrometheusOptions = {}) {
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
    this.maxErrors = opts.maxErrors ?? 1000;
    this.onSample = opts.onSample;
  }

  write(chunk: string | Uint8Array): void {
    if (this.ended) throw new Error('ExpositionParser: write after end');
    if (typeof chunk === 'string') {
      this.bytes += Buffer.byteLength(chunk, 'utf8');
      this.feed(chunk);
    } else {
      this.bytes += chunk.byteLength;
      this.decoder ??= new StringDecoder('utf8');
      this.feed(this.decoder.write(chunk as Buffer));
    }
  }

  /**
   * The whole input as one string (parsePrometheus): its UTF-8 size matters only near the limit (see
   * checkInput), and counting it would cost a pass over the text.
   */
  writeWhole(text: string): void {
    if (this.ended || this.chars > 0) throw new Error('ExpositionParser: writeWhole must be the only write');
    if (text.length <= this.maxBytes && text.length * 3 > this.maxBytes)
      this.bytes = Buffer.byteLength(text, 'utf8');
    else this.bytesCounted = false;
    this.feed(text);
  }

  /** The parsed exposition; throws `MetricsParseError` for input that is not exposition at all. */
  end(): ParsedExposition {
    if (this.ended) throw new Error('ExpositionParser: end called twice');
    if (this.decoder) this.feed(this.decoder.end());
    this.ended = true;
    const over = this.chars > this.maxBytes;
    if (!over) {
      // The text's last line: after its final newline, possibly empty.
      this.lineNo++;
      this.line(this.pending, 0, this.pending.length);
      this.pending = '';
    }
    const bytes = this.bytesCounted ? this.bytes : undefined;
    checkInput(
      {
        chars: this.chars,
        ...(bytes !== undefined ? { bytes } : {}),
        content: this.content,
        head: this.head,
      },
      this.maxBytes,
      'metrics input',
    );
    assertLooksLikeExposition(this.first);
    const { errors, samples, families } = this;
    const dropped = this.dropped;
    if (dropped > 0)
      errors.push({ line: this.lineNo, message: `${dropped} more malformed lines not listed` });
    if (this.meaningful === 0) {
      throw new MetricsParseError(
        `metrics input has no readable metric lines (${errors.length + dropped} malformed; first: ${errors[0]?.message ?? 'none'})`,
      );
    }
    return { samples, families, errors };
  }

  private feed(text: string): void {
    if (text.length === 0) return;
    this.chars += text.length;
    if (this.head.length < HEAD_CHARS) {
      const head = this.head + text.slice(0, HEAD_CHARS - this.head.length);
      // A flat copy: a slice would keep this whole chunk alive until the end.
      this.head = head.length === HEAD_CHARS ? ` ${head}`.slice(1) : head;
    }
    if (!this.content) this.content = /\S/.test(text);
    if (this.first === undefined) {
      const i = firstNonBlank(text);
      if (i !== -1) this.first = text.charCodeAt(i);
    }
    // Over the limit: end() throws; parsing the rest would be wasted.
    if (this.chars > this.maxBytes) {
      this.pending = '';
      return;
    }
    let pos = 0;
    if (this.pending.length > 0) {
      const nl = text.indexOf('\n');
      if (nl === -1) {
        this.pending += text;
        return;
      }
      const joined = this.pending + text.slice(0, nl);
      this.pending = '';
      this.lineNo++;
      this.line(joined, 0, joined.length);
      pos = nl + 1;
    }
    const n = text.length;
    for (;;) {
      const end = text.indexOf('\n', pos);
      if (end === -1) break;
      this.lineNo++;
      this.line(text, pos, end);
      pos = end + 1;
    }
    // A copy, so the chunk can be collected now.
    this.pending = pos < n ? ` ${text.slice(pos)}`.slice(1) : '';
  }

  /** One line: `text` from `pos` to `end` (exclusive, before its newline). */
  private line(text: string, pos: number, end: number): void {
    let stop = end;
    if (stop > pos && text.charCodeAt(stop - 1) === 13) stop--;
    // Leading whitespace is tolerated (some proxies indent); trailing handled by the line parser.
    let start = pos;
    while (start < stop && (text.charCodeAt(start) === CH_SPACE || text.charCodeAt(start) === CH_TAB))
      start++;
    if (start >= stop) return;
    const line = text.slice(start, stop);
    const lineNo = this.lineNo;
    if (line.charCodeAt(0) === CH_HASH) {
      this.lastName = undefined;
      const err = parseComment(line, this.families);
      if (err) this.addError(lineNo, err);
      else this.meaningful++;
      return;
    }
    const r = parseSampleLine(line, lineNo, this.cache);
    if (typeof r === 'string') {
      this.addError(lineNo, r);
      return;
    }
    this.meaningful++;
    if (this.onSample) {
      this.onSample(r);
      return;
    }
    this.samples.push(r);
    if (r.name !== this.lastName || !this.lastFamily) {
      this.lastFamily = familyFor(this.families, familyNameOf(r.name, this.families));
      this.lastName = r.name;
    }
    this.lastFamily.samples.push(r);
  }

  private addError(line: number, message: string): void {
    if (this.errors.length < this.maxErrors) this.errors.push({ line, message });
    else this.dropped++;
  }
}

/** The whole text at once: the same parser, one chunk. */
export function parsePrometheus(text: string, opts: ParsePrometheusOptions = {}): ParsedExposition {
  if (typeof text !== 'string') throw new MetricsParseError('metrics input is not text');
  const parser = new ExpositionParser(opts);
  parser.writeWhole(text);
  return parser.end();
}

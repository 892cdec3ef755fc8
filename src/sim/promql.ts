/**
 * The PromQL subset the simulated Prometheus evaluates — exactly the forms gpu-medic's prometheus source
 * sends, with Prometheus's semantics for them; anything else is refused as `bad_data`, as a real server
 * refuses what it cannot parse:
 *   selector            NAME | NAME{…} | {label=~"…", …}   (=, !=, =~, !~; regexes fully anchored)
 *   vector OP scalar    comparison filters (== != > < >= <=) keep `__name__`; `*` drops it
 *   a or b              b's elements whose labels (without `__name__`) are not in a
 *   sum|count|group by (labels) (expr)
 *   label_replace(expr, "dst", "replacement", "src", "regex")
 *   ( expr )
 */

/**
 * One sample of an instant vector. `labels` never holds `__name__` (the name is apart, so the series of one GPU
 * can share one labels object); `name` is absent once an operation drops it.
 */
export interface SimSeries {
  name?: string;
  labels: Readonly<Record<string, string>>;
  value: number;
}

/** A query Prometheus would refuse to parse (HTTP 400, errorType bad_data). */
export class PromqlParseError extends Error {
  readonly errorType = 'bad_data';
}
/** A query that parses but fails to evaluate (HTTP 422, errorType execution). */
export class PromqlExecError extends Error {
  readonly errorType = 'execution';
}

type Matcher = { name: string; op: '=' | '!=' | '=~' | '!~'; value: string; re?: RegExp };
export type Expr =
  | { kind: 'selector'; matchers: Matcher[] }
  | { kind: 'cmp'; op: string; expr: Expr; scalar: number }
  | { kind: 'mul'; expr: Expr; scalar: number }
  | { kind: 'or'; left: Expr; right: Expr }
  | { kind: 'agg'; op: 'sum' | 'count' | 'group'; by: string[]; expr: Expr }
  | { kind: 'label_replace'; expr: Expr; dst: string; repl: string; src: string; re: RegExp };

type Tok = { t: 'id' | 'str' | 'num' | 'op' | 'end'; v: string; pos: number };

const ID = /[A-Za-z_:][A-Za-z0-9_:]*/y;
const NUM = /[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const OPS = ['=~', '!~', '!=', '==', '>=', '<=', '>', '<', '=', '*', '(', ')', '{', '}', ','];

function tokenize(q: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < q.length) {
    const c = q[i] ?? '';
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      let s = '';
      while (j < q.length && q[j] !== '"') {
        if (q[j] === '\\') {
          const n = q[j + 1];
          s += n === 'n' ? '\n' : (n ?? '');
          j += 2;
        } else s += q[j++];
      }
      if (j >= q.length) throw new PromqlParseError(`1:${i + 1}: parse error: unterminated quoted string`);
      out.push({ t: 'str', v: s, pos: i });
      i = j + 1;
      continue;
    }
    NUM.lastIndex = i;
    const num = /[0-9]/.test(c) ? NUM.exec(q) : null;
    if (num) {
      out.push({ t: 'num', v: num[0], pos: i });
      i += num[0].length;
      continue;
    }
    ID.lastIndex = i;
    const id = ID.exec(q);
    if (id) {
      out.push({ t: 'id', v: id[0], pos: i });
      i += id[0].length;
      continue;
    }
    const op = OPS.find((o) => q.startsWith(o, i));
    if (!op) throw new PromqlParseError(`1:${i + 1}: parse error: unexpected character: '${c}'`);
    out.push({ t: 'op', v: op, pos: i });
    i += op.length;
  }
  out.push({ t: 'end', v: '', pos: q.length });
  return out;
}

const CMP = new Set(['==', '!=', '>', '<', '>=', '<=']);

/** Parses the subset; throws PromqlParseError for anything outside it. */
export function parsePromql(query: string): Expr {
  const toks = tokenize(query);
  let k = 0;
  const peek = () => toks[k] as Tok;
  const next = () => toks[k++] as Tok;
  const unsupported = (tok: Tok, what: string): never => {
    throw new PromqlParseError(
      `1:${tok.pos + 1}: parse error: ${what} (the gpu-medic simulator implements only the queries gpu-medic sends)`,
    );
  };
  const expect = (v: string) => {
    const t = next();
    if (t.v !== v || (t.t !== 'op' && t.t !== 'id')) unsupported(t, `expected "${v}", got "${t.v}"`);
  };
  const str = () => {
    const t = next();
    if (t.t !== 'str') unsupported(t, `expected a string, got "${t.v}"`);
    return t.v;
  };
  const regex = (src: string, tok: Tok) => {
    try {
      return new RegExp(`^(?:${src})$`);
    } catch {
      return unsupported(tok, `invalid regular expression "${src}"`);
    }
  };

  function orExpr(): Expr {
    let left = cmpExpr();
    while (peek().t === 'id' && peek().v === 'or') {
      next();
      left = { kind: 'or', left, right: cmpExpr() };
    }
    return left;
  }
  function cmpExpr(): Expr {
    const expr = mulExpr();
    const t = peek();
    if (t.t === 'op' && CMP.has(t.v)) {
      next();
      if (peek().t === 'id' && peek().v === 'bool')
        unsupported(peek(), 'the bool modifier is not implemented');
      const n = next();
      if (n.t !== 'num') unsupported(n, 'comparisons are implemented against a number only');
      return { kind: 'cmp', op: t.v, expr, scalar: Number(n.v) };
    }
    return expr;
  }
  function mulExpr(): Expr {
    let expr = primary();
    while (peek().t === 'op' && peek().v === '*') {
      next();
      const n = next();
      if (n.t !== 'num') unsupported(n, 'multiplication is implemented by a number only');
      expr = { kind: 'mul', expr, scalar: Number(n.v) };
    }
    return expr;
  }
  function labelList(): string[] {
    expect('(');
    const out: string[] = [];
    while (peek().v !== ')') {
      const t = next();
      if (t.t !== 'id') unsupported(t, `expected a label name, got "${t.v}"`);
      out.push(t.v);
      if (peek().v === ',') next();
    }
    expect(')');
    return out;
  }
  function matchers(): Matcher[] {
    expect('{');
    const out: Matcher[] = [];
    while (peek().v !== '}') {
      const name = next();
      if (name.t !== 'id') unsupported(name, `expected a label name, got "${name.v}"`);
      const op = next();
      if (op.t !== 'op' || !['=', '!=', '=~', '!~'].includes(op.v)) unsupported(op, `unexpected "${op.v}"`);
      const valueTok = peek();
      const value = str();
      const m: Matcher = { name: name.v, op: op.v as Matcher['op'], value };
      if (op.v === '=~' || op.v === '!~') m.re = regex(value, valueTok);
      out.push(m);
      if (peek().v === ',') next();
    }
    expect('}');
    return out;
  }
  function primary(): Expr {
    const t = peek();
    if (t.t === 'op' && t.v === '(') {
      next();
      const e = orExpr();
      expect(')');
      return e;
    }
    if (t.t === 'op' && t.v === '{') {
      const ms = matchers();
      if (!ms.some((m) => !matches({ labels: {}, value: 0 }, m))) {
        unsupported(t, 'vector selector must contain at least one non-empty matcher');
      }
      return { kind: 'selector', matchers: ms };
    }
    if (t.t === 'id' && (t.v === 'sum' || t.v === 'count' || t.v === 'group')) {
      next();
      if (peek().v !== 'by') unsupported(peek(), `only "${t.v} by (…) (…)" is implemented`);
      next();
      const by = labelList();
      expect('(');
      const expr = orExpr();
      expect(')');
      return { kind: 'agg', op: t.v, by, expr };
    }
    if (t.t === 'id' && t.v === 'label_replace') {
      next();
      expect('(');
      const expr = orExpr();
      expect(',');
      const dst = str();
      expect(',');
      const repl = str();
      expect(',');
      const src = str();
      expect(',');
      const reTok = peek();
      const re = regex(str(), reTok);
      expect(')');
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(dst)) {
        throw new PromqlExecError(`invalid destination label name in label_replace(): ${dst}`);
      }
      return { kind: 'label_replace', expr, dst, repl, src, re };
    }
    if (t.t === 'id') {
      next();
      const ms: Matcher[] = [{ name: '__name__', op: '=', value: t.v }];
      if (peek().v === '{') ms.push(...matchers());
      return { kind: 'selector', matchers: ms };
    }
    return unsupported(t, `unexpected "${t.v || 'end of input'}"`);
  }

  const e = orExpr();
  if (peek().t !== 'end') unsupported(peek(), `unexpected "${peek().v}"`);
  return e;
}

/** Where an evaluation reads series: by metric name (most selectors name their metrics). */
export interface SeriesSource {
  names(): Iterable<string>;
  series(name: string): Iterable<SimSeries>;
}

function labelOf(s: SimSeries, label: string): string {
  return (label === '__name__' ? s.name : s.labels[label]) ?? '';
}

function matches(s: SimSeries, m: Matcher): boolean {
  const v = labelOf(s, m.name);
  switch (m.op) {
    case '=':
      return v === m.value;
    case '!=':
      return v !== m.value;
    case '=~':
      return (m.re as RegExp).test(v);
    case '!~':
      return !(m.re as RegExp).test(v);
  }
}

/** The label signature Prometheus matches `or` on: every label but `__name__`. */
function signature(labels: Readonly<Record<string, string>>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}\u0000${labels[k]}`)
    .join('\u0001');
}

const CMP_FN: Record<string, (a: number, b: number) => boolean> = {
  '==': (a, b) => a === b,
  '!=': (a, b) => a !== b,
  '>': (a, b) => a > b,
  '<': (a, b) => a < b,
  '>=': (a, b) => a >= b,
  '<=': (a, b) => a <= b,
};

export function evaluate(e: Expr, src: SeriesSource): SimSeries[] {
  switch (e.kind) {
    case 'selector': {
      const byName = e.matchers.find((m) => m.name === '__name__');
      const names =
        byName?.op === '='
          ? [byName.value]
          : [...src.names()].filter((n) => !byName || matches({ name: n, labels: {}, value: 0 }, byName));
      const rest = e.matchers.filter((m) => m.name !== '__name__');
      const out: SimSeries[] = [];
      for (const n of names) {
        for (const s of src.series(n)) if (rest.every((m) => matches(s, m))) out.push(s);
      }
      return out;
    }
    case 'cmp': {
      const f = CMP_FN[e.op] as (a: number, b: number) => boolean;
      return evaluate(e.expr, src).filter((s) => f(s.value, e.scalar));
    }
    case 'mul': {
      const out = evaluate(e.expr, src).map((s) => ({ labels: s.labels, value: s.value * e.scalar }));
      const seen = new Set<string>();
      for (const s of out) {
        const sig = signature(s.labels);
        if (seen.has(sig)) throw new PromqlExecError('vector cannot contain metrics with the same labelset');
        seen.add(sig);
      }
      return out;
    }
    case 'or': {
      const left = evaluate(e.left, src);
      const seen = new Set(left.map((s) => signature(s.labels)));
      return [...left, ...evaluate(e.right, src).filter((s) => !seen.has(signature(s.labels)))];
    }
    case 'agg': {
      const groups = new Map<string, { labels: Record<string, string>; sum: number; count: number }>();
      for (const s of evaluate(e.expr, src)) {
        const labels: Record<string, string> = {};
        for (const l of e.by) {
          const v = s.labels[l];
          if (v !== undefined && v !== '') labels[l] = v;
        }
        const key = e.by.map((l) => labels[l] ?? '').join('\u0000');
        const g = groups.get(key);
        if (g) {
          g.sum += s.value;
          g.count++;
        } else groups.set(key, { labels, sum: s.value, count: 1 });
      }
      return [...groups.values()].map((g) => ({
        labels: g.labels,
        value: e.op === 'sum' ? g.sum : e.op === 'count' ? g.count : 1,
      }));
    }
    case 'label_replace':
      return evaluate(e.expr, src).map((s) => {
        const m = e.re.exec(labelOf(s, e.src));
        if (!m) return s;
        const value = e.repl.replace(/\$(\d+)/g, (_, d: string) => m[Number(d)] ?? '');
        const labels = { ...s.labels };
        if (value === '') delete labels[e.dst];
        else labels[e.dst] = value;
        return s.name === undefined ? { labels, value: s.value } : { name: s.name, labels, value: s.value };
      });
  }
}

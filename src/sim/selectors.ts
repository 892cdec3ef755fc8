/**
 * Kubernetes label and field selectors, parsed the way the API server reads `labelSelector` /
 * `fieldSelector` query parameters. A parse error is a SelectorError (the server answers 400).
 */
export class SelectorError extends Error {
  readonly code = 'BadSelector';
}

export type LabelRequirement =
  | { op: 'exists' | 'notexists'; key: string }
  | { op: 'eq' | 'neq'; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: string[] };

export type LabelSelector = LabelRequirement[];

/** Splits on commas that are not inside parentheses (`a in (x,y),b`). */
function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}

const keyPattern = /^([a-z0-9A-Z.-]+\/)?[a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?$/;
const valuePattern = /^(([a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?)?)$/;

function checkKey(key: string, raw: string): string {
  if (!keyPattern.test(key))
    throw new SelectorError(`unable to parse requirement: invalid label key "${key}" in "${raw}"`);
  return key;
}

function checkValue(value: string, raw: string): string {
  if (!valuePattern.test(value))
    throw new SelectorError(`unable to parse requirement: invalid label value "${value}" in "${raw}"`);
  return value;
}

export function parseLabelSelector(raw: string | undefined): LabelSelector {
  if (!raw) return [];
  return splitTopLevel(raw).map((part): LabelRequirement => {
    const setMatch = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part);
    if (setMatch) {
      const values = (setMatch[3] ?? '')
        .split(',')
        .map((v) => v.trim())
        .filter((v) => v.length > 0)
        .map((v) => checkValue(v, raw));
      return { op: setMatch[2] === 'in' ? 'in' : 'notin', key: checkKey(setMatch[1] ?? '', raw), values };
    }
    if (part.startsWith('!')) return { op: 'notexists', key: checkKey(part.slice(1).trim(), raw) };
    const eq = /^([^!=\s]+)\s*(!=|==|=)\s*(.*)$/.exec(part);
    if (eq) {
      const key = checkKey(eq[1] ?? '', raw);
      const value = checkValue((eq[3] ?? '').trim(), raw);
      return eq[2] === '!=' ? { op: 'neq', key, value } : { op: 'eq', key, value };
    }
    return { op: 'exists', key: checkKey(part, raw) };
  });
}

function matchesOne(r: LabelRequirement, l: Record<string, string>): boolean {
  const has = Object.hasOwn(l, r.key);
  const v = l[r.key];
  switch (r.op) {
    case 'exists':
      return has;
    case 'notexists':
      return !has;
    case 'eq':
      return v === r.value;
    case 'neq':
      return v !== r.value;
    case 'in':
      return v !== undefined && r.values.includes(v);
    case 'notin':
      return v === undefined || !r.values.includes(v);
  }
}

export function matchesLabels(selector: LabelSelector, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return selector.every((r) => matchesOne(r, l));
}

export interface FieldRequirement {
  field: string;
  op: 'eq' | 'neq';
  value: string;
}

export function parseFieldSelector(
  raw: string | undefined,
  supported: readonly string[],
): FieldRequirement[] {
  if (!raw) return [];
  return splitTopLevel(raw).map((part) => {
    const m = /^([^!=\s]+)\s*(!=|==|=)\s*(.*)$/.exec(part);
    if (!m) throw new SelectorError(`invalid selector: '${raw}'; can't understand '${part}'`);
    const field = m[1] ?? '';
    if (!supported.includes(field)) throw new SelectorError(`field label not supported: ${field}`);
    return { field, op: m[2] === '!=' ? 'neq' : 'eq', value: (m[3] ?? '').trim() };
  });
}

export function matchesFields(
  reqs: readonly FieldRequirement[],
  get: (field: string) => string | undefined,
): boolean {
  return reqs.every((r) => {
    const v = get(r.field) ?? '';
    return r.op === 'eq' ? v === r.value : v !== r.value;
  });
}

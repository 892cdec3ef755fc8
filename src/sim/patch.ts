/**
 * The three PATCH flavours of the Kubernetes API server, for the fields the simulator serves.
 * Strategic merge is a JSON merge patch plus merge-by-key for the lists gpu-medic touches
 * (conditions and addresses by `type`, containers by `name`); `$`-directives are ignored.
 */
export class PatchError extends Error {
  constructor(
    message: string,
    readonly status: 400 | 415 | 422,
  ) {
    super(message);
  }
}

type Json = unknown;

const isObject = (v: Json): v is Record<string, Json> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** RFC 7386. */
export function applyMergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return patch;
  const out: Record<string, Json> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

const mergeKeys: Record<string, string> = { conditions: 'type', addresses: 'type', containers: 'name' };

export function applyStrategicMergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return patch;
  const out: Record<string, Json> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$')) continue;
    if (v === null) {
      delete out[k];
      continue;
    }
    const key = mergeKeys[k];
    const current = out[k];
    if (key && Array.isArray(v) && Array.isArray(current)) {
      const merged = [...current];
      for (const item of v) {
        const idx = isObject(item) ? merged.findIndex((c) => isObject(c) && c[key] === item[key]) : -1;
        if (idx >= 0) merged[idx] = applyStrategicMergePatch(merged[idx], item);
        else merged.push(item);
      }
      out[k] = merged;
    } else out[k] = applyStrategicMergePatch(current, v);
  }
  return out;
}

function unescapePointer(token: string): string {
  return token.replace(/~1/g, '/').replace(/~0/g, '~');
}

function parsePointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new PatchError(`invalid JSON pointer "${path}"`, 422);
  return path.slice(1).split('/').map(unescapePointer);
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

/** RFC 6902 (add, remove, replace, test, move, copy). */
export function applyJsonPatch(target: Json, ops: Json): Json {
  if (!Array.isArray(ops))
    throw new PatchError('json: cannot unmarshal object into Go value of type jsonpatch.Patch', 400);
  let doc = clone(target);
  for (const op of ops) {
    if (!isObject(op) || typeof op.op !== 'string' || typeof op.path !== 'string')
      throw new PatchError('invalid JSON patch operation', 400);
    const path = parsePointer(op.path);
    switch (op.op) {
      case 'add':
      case 'replace':
        doc = setAt(doc, path, clone(op.value), op.op);
        break;
      case 'remove':
        doc = removeAt(doc, path);
        break;
      case 'test':
        if (JSON.stringify(getAt(doc, path)) !== JSON.stringify(op.value))
          throw new PatchError(
            `the server rejected our request due to an error in our request: test failed for ${op.path}`,
            422,
          );
        break;
      case 'move':
      case 'copy': {
        if (typeof op.from !== 'string') throw new PatchError(`${op.op} without from`, 400);
        const from = parsePointer(op.from);
        const value = clone(getAt(doc, from));
        if (op.op === 'move') doc = removeAt(doc, from);
        doc = setAt(doc, path, value, 'add');
        break;
      }
      default:
        throw new PatchError(`unknown JSON patch operation "${op.op}"`, 400);
    }
  }
  return doc;
}

function getAt(doc: Json, path: string[]): Json {
  let cur = doc;
  for (const token of path) {
    if (Array.isArray(cur)) cur = cur[Number(token)];
    else if (isObject(cur)) cur = cur[token];
    else throw new PatchError(`path /${path.join('/')} does not exist`, 422);
    if (cur === undefined) throw new PatchError(`path /${path.join('/')} does not exist`, 422);
  }
  return cur;
}

function parentOf(doc: Json, path: string[]): { parent: Json; last: string } {
  if (path.length === 0) throw new PatchError('cannot modify the root', 422);
  const parent = getAt(doc, path.slice(0, -1));
  return { parent, last: path[path.length - 1] ?? '' };
}

function setAt(doc: Json, path: string[], value: Json, mode: 'add' | 'replace'): Json {
  if (path.length === 0) return value;
  const { parent, last } = parentOf(doc, path);
  if (Array.isArray(parent)) {
    const idx = last === '-' ? parent.length : Number(last);
    if (!Number.isInteger(idx) || idx < 0 || idx > parent.length)
      throw new PatchError(`bad array index ${last}`, 422);
    if (mode === 'add') parent.splice(idx, 0, value);
    else parent[idx] = value;
  } else if (isObject(parent)) {
    if (mode === 'replace' && !(last in parent)) throw new PatchError(`path ${last} does not exist`, 422);
    parent[last] = value;
  } else throw new PatchError(`cannot set ${last} on a scalar`, 422);
  return doc;
}

function removeAt(doc: Json, path: string[]): Json {
  const { parent, last } = parentOf(doc, path);
  if (Array.isArray(parent)) parent.splice(Number(last), 1);
  else if (isObject(parent)) {
    if (!(last in parent)) throw new PatchError(`path ${last} does not exist`, 422);
    delete parent[last];
  }
  return doc;
}

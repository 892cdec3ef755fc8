/**
 * EC2 tag actions of the simulated AWS endpoint (query protocol, XML answers): CreateTags and DescribeTags
 * on instances. The tags live on the instances themselves (CloudEffects), so DescribeInstances' `tagSet`
 * shows what CreateTags wrote.
 *
 * As EC2 does: an unknown instance is InvalidInstanceID.NotFound and nothing is tagged (the call is
 * all-or-nothing); keys starting with `aws:` are reserved; a key is at most 128 characters, a value 256;
 * an instance carries at most 50 tags. A terminated instance can still be tagged while EC2 still lists it.
 */
import type { CloudEffects, SimInstance } from './cloud-effects.js';
import { xmlTag } from './http-util.js';

/** An EC2 error: the server turns it into EC2's `<Response><Errors>` XML. */
export interface Ec2TagError {
  status: number;
  code: string;
  message: string;
}

export type Ec2TagReply = { inner: string } | { error: Ec2TagError };

/** The same id shape the rest of the fake accepts. */
const INSTANCE_ID = /^i-[0-9a-zA-Z]{1,32}$/;
const MAX_TAGS = 50;

const fail = (status: number, code: string, message: string): Ec2TagReply => ({
  error: { status, code, message },
});

/** `Prefix.1`, `Prefix.2` … in index order. */
function indexed(params: Record<string, string>, prefix: string): number[] {
  const out = new Set<number>();
  const p = `${prefix}.`;
  for (const k of Object.keys(params)) {
    if (!k.startsWith(p)) continue;
    const n = Number(k.slice(p.length).split('.')[0]);
    if (Number.isInteger(n) && n > 0) out.add(n);
  }
  return [...out].sort((a, b) => a - b);
}

function resourceIds(p: Record<string, string>): string[] {
  return indexed(p, 'ResourceId').map((n) => p[`ResourceId.${n}`] ?? '');
}

function notFound(ids: string[]): Ec2TagReply {
  const list = ids.join(', ');
  return fail(
    400,
    'InvalidInstanceID.NotFound',
    ids.length === 1 ? `The instance ID '${list}' does not exist` : `The instance IDs '${list}' do not exist`,
  );
}

/** The `Tag.N.Key` / `Tag.N.Value` pairs of the request, checked as EC2 checks them. */
function requestedTags(p: Record<string, string>): { tags: Record<string, string> } | { error: Ec2TagError } {
  const tags: Record<string, string> = {};
  for (const n of indexed(p, 'Tag')) {
    const key = p[`Tag.${n}.Key`];
    if (key === undefined || key === '') {
      return { error: { status: 400, code: 'InvalidParameterValue', message: 'Tag key cannot be empty' } };
    }
    if (key.toLowerCase().startsWith('aws:')) {
      return {
        error: {
          status: 400,
          code: 'InvalidParameterValue',
          message: `Tag keys starting with 'aws:' are reserved for internal use`,
        },
      };
    }
    const value = p[`Tag.${n}.Value`] ?? '';
    if (key.length > 128 || value.length > 256) {
      return {
        error: {
          status: 400,
          code: 'InvalidParameterValue',
          message: `Tag key must be at most 128 characters and its value at most 256 ('${key.slice(0, 40)}')`,
        },
      };
    }
    tags[key] = value;
  }
  return { tags };
}

function createTags(effects: CloudEffects, p: Record<string, string>): Ec2TagReply {
  const ids = resourceIds(p);
  if (ids.length === 0)
    return fail(400, 'MissingParameter', 'The request must contain the parameter resourceIdSet');
  const bad = ids.find((id) => !INSTANCE_ID.test(id));
  if (bad !== undefined) {
    // The simulator holds only instances: another resource type is not something our client sends.
    return fail(400, 'InvalidID', `The ID '${bad}' is not valid`);
  }
  const asked = requestedTags(p);
  if ('error' in asked) return asked;
  const wanted = asked.tags;
  if (Object.keys(wanted).length === 0)
    return fail(400, 'MissingParameter', 'The request must contain the parameter tagSet');
  const known = effects.describeInstances(ids);
  const missing = ids.filter((id) => !known.some((i) => i.instanceId === id));
  if (missing.length > 0) return notFound(missing);
  const over = known.find((i) => Object.keys({ ...i.tags, ...wanted }).length > MAX_TAGS);
  if (over) {
    return fail(
      400,
      'TagLimitExceeded',
      `The maximum number of tags (${MAX_TAGS}) for ${over.instanceId} would be exceeded`,
    );
  }
  if (p.DryRun === 'true') {
    return fail(412, 'DryRunOperation', 'Request would have succeeded, but DryRun flag is set.');
  }
  if (!effects.tagInstance) return fail(400, 'UnsupportedOperation', 'this simulated cloud keeps no tags');
  for (const id of ids) {
    if (!effects.tagInstance(id, wanted)) return notFound([id]);
  }
  return { inner: xmlTag('return', true) };
}

type TagRow = { resourceId: string; key: string; value: string };
const TAG_FILTERS: Record<string, (row: TagRow, values: string[]) => boolean> = {
  'resource-id': (r, v) => v.includes(r.resourceId),
  'resource-type': (_r, v) => v.includes('instance'),
  key: (r, v) => v.includes(r.key),
  value: (r, v) => v.includes(r.value),
};

function describeTags(effects: CloudEffects, p: Record<string, string>): Ec2TagReply {
  const filters: ((r: TagRow) => boolean)[] = [];
  for (const n of indexed(p, 'Filter')) {
    const name = p[`Filter.${n}.Name`] ?? '';
    const values = indexed(p, `Filter.${n}.Value`).map((m) => p[`Filter.${n}.Value.${m}`] ?? '');
    const fn = TAG_FILTERS[name];
    if (!fn) return fail(400, 'InvalidParameterValue', `The filter '${name}' is invalid`);
    filters.push((r) => fn(r, values));
  }
  const rows = effects
    .describeInstances()
    .flatMap((i: SimInstance) =>
      Object.entries(i.tags).map(([key, value]) => ({ resourceId: i.instanceId, key, value })),
    )
    .filter((r) => filters.every((f) => f(r)));
  const items = rows
    .map(
      (r) =>
        `<item>${xmlTag('resourceId', r.resourceId)}${xmlTag('resourceType', 'instance')}${xmlTag('key', r.key)}${xmlTag('value', r.value)}</item>`,
    )
    .join('');
  return { inner: `<tagSet>${items}</tagSet>` };
}

/** The tag actions this module serves; undefined for any other EC2 action. */
export function ec2TagAction(
  effects: CloudEffects,
  action: string,
  p: Record<string, string>,
): Ec2TagReply | undefined {
  if (action === 'CreateTags') return createTags(effects, p);
  if (action === 'DescribeTags') return describeTags(effects, p);
  return undefined;
}

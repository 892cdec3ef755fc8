/**
 * `/gpu …` text → a typed command, or a helpful error with the usage line. Also the button-value parser:
 * Slack payloads are untrusted input, so both go through validation and never throw.
 */
import { z } from 'zod';
import { defaultExclusionMs, maxExclusionMs } from '../../domain/exclusion.js';
import { clusterNamePattern, splitNodeRef } from '../../fleet/route.js';

export const GpuSubcommands = [
  'status',
  'exclude',
  'unexclude',
  'exclusions',
  'cordon',
  'uncordon',
  'reset',
  'reboot',
  'replace',
  'history',
  'report',
  'diag',
  'pause',
  'resume',
  'help',
] as const;
export type GpuSubcommand = (typeof GpuSubcommands)[number];

/**
 * Commands about one cluster that name no node: where several clusters share the Slack app, they name theirs
 * with a first `cluster:<name>` (a reason's first word never does).
 */
export const ClusterScoped = ['exclusions', 'report', 'pause', 'resume'] as const;
export type ClusterScopedKind = (typeof ClusterScoped)[number];

export const NodeActionKinds = ['cordon', 'uncordon', 'reset', 'reboot', 'replace'] as const;
export type NodeActionKind = (typeof NodeActionKinds)[number];

/**
 * `cluster`: the cluster a node argument named (`<cluster>/<node>`); a bare node name leaves it unset. On
 * `status` alone, a cluster name (`/gpu status <cluster>`) that is not a valid node name.
 */
export type GpuCommand =
  | { kind: 'help' }
  | { kind: 'status'; node?: string; cluster?: string }
  | { kind: 'exclude'; node: string; durationMs: number; reason?: string; cluster?: string }
  | { kind: 'unexclude'; node: string; cluster?: string }
  | { kind: 'exclusions'; cluster?: string }
  /** `gpu`: reset only, the GPU index to reset (NVSwitch types reset all GPUs whatever it says). */
  | { kind: NodeActionKind; node: string; reason?: string; gpu?: number; cluster?: string }
  | { kind: 'history'; node: string; cluster?: string }
  | { kind: 'report'; days: number; cluster?: string }
  /** A DCGM diagnostic of the node now, level 1 (quick) unless told. */
  | { kind: 'diag'; node: string; level: 1 | 2 | 3; cluster?: string }
  | { kind: 'pause'; reason?: string; cluster?: string }
  | { kind: 'resume'; cluster?: string };

export interface CommandError {
  error: string;
  usage: string;
}

export type ParseResult = GpuCommand | CommandError;

export function isCommandError(result: ParseResult): result is CommandError {
  return 'error' in result;
}

/** `/gpu report` without a number: the last 30 days; at most a year. */
export const defaultReportDays = 30;
export const maxReportDays = 365;

const minute = 60_000;
const hour = 60 * minute;
const day = 24 * hour;

// The exclusion bounds are the services' (one default for Slack, the alert buttons and the CLI).
export { defaultExclusionMs, maxExclusionMs };

export const usage: Record<GpuSubcommand, string> = {
  status: '/gpu status [node] (or a cluster, or <cluster>/<node>)',
  exclude: '/gpu exclude <node> [duration, e.g. 30m, 2h, 1d, 1h30m; default 24h] [reason…]',
  unexclude: '/gpu unexclude <node>',
  exclusions: '/gpu exclusions [cluster:<name>]',
  cordon: '/gpu cordon <node> [reason…]',
  uncordon: '/gpu uncordon <node> [reason…]',
  reset: '/gpu reset <node> [gpu] [reason…]',
  reboot: '/gpu reboot <node> [reason…]',
  replace: '/gpu replace <node> [reason…]',
  history: '/gpu history <node>',
  report: '/gpu report [cluster:<name>] [days, default 30, at most 365]',
  diag: '/gpu diag <node> [level 1|2|3; default 1] (DCGM diagnostics, without cordoning)',
  pause: '/gpu pause [cluster:<name>] [reason…]',
  resume: '/gpu resume [cluster:<name>]',
  help: '/gpu help',
};

export const fullUsage = GpuSubcommands.map((s) => usage[s]).join('\n');

/** The descriptions shown by `/gpu help`, in subcommand order. */
export const subcommandHelp: Record<GpuSubcommand, string> = {
  status:
    'Fleet summary (every cluster, or one), or one node (cluster/node where names repeat): verdict, GPUs, open incident, last actions',
  exclude: 'Keep gpu-medic away from a node for a while (default 24h, at most 30d)',
  unexclude: 'End an exclusion',
  exclusions: 'List excluded nodes',
  cordon: 'Cordon a node (asks for confirmation)',
  uncordon: 'Uncordon a node (asks for confirmation)',
  reset:
    'Cordon, drain and reset a GPU (nvidia-smi; all GPUs on NVSwitch types), no reboot (asks for confirmation)',
  reboot: 'Cordon, drain and reboot a node (asks for confirmation)',
  replace: 'Cordon, drain and replace a node’s instance (asks for confirmation)',
  history: 'What gpu-medic and people did to a node',
  report: 'Repair records for AWS support cases (RMA): a CSV file, one row per GPU and repair',
  diag: 'Run DCGM diagnostics on a node now, without cordoning it (admins; level 3 takes about half an hour)',
  pause: 'Stop all automatic actions (open the circuit breaker)',
  resume: 'Resume automatic actions (close the circuit breaker)',
  help: 'This help',
};

const dns1123Label = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const dns1123Subdomain = new RegExp(`^${dns1123Label}(\\.${dns1123Label})*$`);

/** A Kubernetes node name: a DNS-1123 subdomain (lowercase alphanumerics, `-` and `.`, at most 253). */
export function isNodeName(name: string): boolean {
  return name.length > 0 && name.length <= 253 && dns1123Subdomain.test(name);
}

export const NodeName = z.string().refine(isNodeName, 'not a valid Kubernetes node name');

/** Why a node name is invalid, in words a person can act on. */
function nodeNameError(name: string): string | undefined {
  if (isNodeName(name)) return undefined;
  if (name.length > 253) return `Node name is ${name.length} characters long; Kubernetes allows at most 253.`;
  const lower = name.toLowerCase();
  if (lower !== name && isNodeName(lower)) {
    return `Node names are lowercase: did you mean '${lower}'?`;
  }
  return `'${name}' is not a valid node name (lowercase letters, digits, '-' and '.', e.g. ip-10-0-1-2.ec2.internal).`;
}

const durationPattern = /^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$/;

/** `30m`, `2h`, `1d`, `1h30m`, `1w` → milliseconds; anything else (including `0m`) → undefined. */
export function parseDuration(text: string): number | undefined {
  const m = durationPattern.exec(text.toLowerCase());
  if (!m || text.length === 0) return undefined;
  const [, w, d, h, min] = m;
  const ms =
    Number(w ?? 0) * 7 * day + Number(d ?? 0) * day + Number(h ?? 0) * hour + Number(min ?? 0) * minute;
  return ms > 0 && Number.isSafeInteger(ms) ? ms : undefined;
}

/** Looks like a duration the user meant, even if it is not one we accept (`2x`, `90s`, `0h`). */
function looksLikeDuration(token: string): boolean {
  return /^\d[\w.]*$/.test(token);
}

function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] ?? 0;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j] ?? 0;
      prev[j] = Math.min(up + 1, (prev[j - 1] ?? 0) + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length] ?? 0;
}

/** The closest subcommand within two edits, or a prefix match (`excl` → `exclude`). */
export function suggestSubcommand(word: string): GpuSubcommand | undefined {
  const lower = word.toLowerCase();
  let best: GpuSubcommand | undefined;
  let bestDistance = 3;
  for (const candidate of GpuSubcommands) {
    const distance = levenshtein(lower, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best ?? GpuSubcommands.find((c) => lower.length >= 3 && c.startsWith(lower));
}

/**
 * Slack may send a node name that looks like a host name as a link (`<http://ip-10-0-1-2.ec2.internal|ip-…>`)
 * and escapes `&`, `<`, `>`: undo both so people can type what they see.
 */
export function normalizeCommandText(text: string): string {
  return text
    .replace(
      /<(?:https?:\/\/|mailto:)?([^|>]*)(?:\|([^>]*))?>/g,
      (_m, target: string, label?: string) => label ?? target,
    )
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
    .replace(/[\u00a0\s]+/g, ' ')
    .trim();
}

function fail(sub: GpuSubcommand | undefined, error: string): CommandError {
  return { error, usage: sub ? usage[sub] : fullUsage };
}

function reasonOf(words: string[]): string | undefined {
  const reason = words.join(' ').trim();
  return reason.length > 0 ? reason.slice(0, 500) : undefined;
}

/** Parse the text after `/gpu`. Empty text is `help`. Never throws. */
export function parseGpuCommand(text: string): ParseResult {
  const words = normalizeCommandText(typeof text === 'string' ? text : '')
    .split(' ')
    .filter(Boolean);
  const [first, ...rest] = words;
  if (first === undefined) return { kind: 'help' };
  const sub = first.toLowerCase();
  if (!(GpuSubcommands as readonly string[]).includes(sub)) {
    const guess = suggestSubcommand(sub);
    const hint = guess ? ` Did you mean '${guess}'?` : ` Try one of: ${GpuSubcommands.join(', ')}.`;
    return fail(guess, `Unknown subcommand '${first.slice(0, 40)}'.${hint}`);
  }
  const name = sub as GpuSubcommand;

  // A node argument is `<node>` or `<cluster>/<node>` (node names repeat across clusters).
  const needNode = (): { node: string; cluster?: string } | CommandError => {
    const ref = rest[0];
    if (ref === undefined) return fail(name, `'${name}' needs a node name.`);
    const { cluster, node } = splitNodeRef(ref);
    if (cluster !== undefined && !clusterNamePattern.test(cluster)) {
      return fail(name, `'${cluster.slice(0, 60)}' is not a cluster name (letters, digits, - and _).`);
    }
    const problem = nodeNameError(node);
    if (problem) return fail(name, problem);
    return cluster !== undefined ? { node, cluster } : { node };
  };
  // A per-cluster command without a node names its cluster with a first `cluster:<name>` (see ClusterScoped).
  let scope: { cluster?: string } = {};
  const named = (ClusterScoped as readonly string[]).includes(name)
    ? /^cluster:(.*)$/i.exec(rest[0] ?? '')?.[1]
    : undefined;
  if (named !== undefined) {
    if (!clusterNamePattern.test(named))
      return fail(name, `'${named.slice(0, 60)}' is not a cluster name (letters, digits, - and _).`);
    scope = { cluster: named };
    rest.shift();
  }

  switch (name) {
    case 'help':
      return { kind: 'help' };
    case 'exclusions':
    case 'resume':
      if (rest.length > 0)
        return fail(name, `'${name}' takes only cluster:<name> (got '${rest.join(' ').slice(0, 60)}').`);
      return { kind: name, ...scope };
    case 'pause': {
      const reason = reasonOf(rest);
      return { kind: 'pause', ...scope, ...(reason ? { reason } : {}) };
    }
    case 'status': {
      if (rest.length === 0) return { kind: 'status' };
      if (rest.length > 1)
        return fail(name, `'status' takes one node name (got '${rest.join(' ').slice(0, 60)}').`);
      const only = rest[0] ?? '';
      // `cluster:<name>` as the per-cluster commands take it.
      const scoped = /^cluster:(.*)$/i.exec(only)?.[1];
      if (scoped !== undefined) {
        if (!clusterNamePattern.test(scoped))
          return fail(name, `'${scoped.slice(0, 60)}' is not a cluster name (letters, digits, - and _).`);
        return { kind: 'status', cluster: scoped };
      }
      // A cluster name that cannot be a node name (capitals, `_`); one that can is decided by the handler.
      if (!only.includes('/') && !isNodeName(only) && clusterNamePattern.test(only)) {
        return { kind: 'status', cluster: only };
      }
      const ref = needNode();
      return 'error' in ref ? ref : { kind: 'status', ...ref };
    }
    case 'unexclude':
    case 'history': {
      const ref = needNode();
      if ('error' in ref) return ref;
      if (rest.length > 1) return fail(name, `'${name}' takes one node name.`);
      return { kind: name, ...ref };
    }
    case 'report': {
      const [token, ...extra] = rest;
      if (token === undefined) return { kind: 'report', days: defaultReportDays, ...scope };
      const days = /^\d{1,3}d?$/i.test(token) ? Number.parseInt(token, 10) : Number.NaN;
      if (extra.length > 0 || !Number.isInteger(days) || days < 1 || days > maxReportDays) {
        return fail(name, `'${token.slice(0, 40)}' is not a number of days from 1 to ${maxReportDays}.`);
      }
      return { kind: 'report', days, ...scope };
    }
    case 'reset': {
      const ref = needNode();
      if ('error' in ref) return ref;
      const token = rest[1];
      const gpu = token !== undefined && /^\d{1,2}$/.test(token) ? Number(token) : undefined;
      const reason = reasonOf(rest.slice(gpu !== undefined ? 2 : 1));
      return { kind: name, ...ref, ...(gpu !== undefined ? { gpu } : {}), ...(reason ? { reason } : {}) };
    }
    case 'cordon':
    case 'uncordon':
    case 'reboot':
    case 'replace': {
      const ref = needNode();
      if ('error' in ref) return ref;
      const reason = reasonOf(rest.slice(1));
      return reason ? { kind: name, ...ref, reason } : { kind: name, ...ref };
    }
    case 'diag': {
      const ref = needNode();
      if ('error' in ref) return ref;
      const given = rest[1];
      if (rest.length > 2 || (given !== undefined && !/^[123]$/.test(given))) {
        return fail(
          name,
          `'diag' takes a node name and a level 1, 2 or 3 (got '${rest.slice(1).join(' ').slice(0, 60)}').`,
        );
      }
      return { kind: 'diag', ...ref, level: given === undefined ? 1 : (Number(given) as 1 | 2 | 3) };
    }
    case 'exclude': {
      const ref = needNode();
      if ('error' in ref) return ref;
      const token = rest[1];
      let durationMs = defaultExclusionMs;
      let reasonWords = rest.slice(1);
      if (token !== undefined && looksLikeDuration(token)) {
        const parsed = parseDuration(token);
        if (parsed === undefined) {
          return fail(
            name,
            `'${token}' is not a duration: use minutes, hours, days or weeks like 30m, 2h, 1d, 1h30m.`,
          );
        }
        if (parsed > maxExclusionMs)
          return fail(name, `'${token}' is longer than the 30d maximum exclusion.`);
        durationMs = parsed;
        reasonWords = rest.slice(2);
      }
      const reason = reasonOf(reasonWords);
      return reason
        ? { kind: 'exclude', ...ref, durationMs, reason }
        : { kind: 'exclude', ...ref, durationMs };
    }
    default: {
      const unknown: never = name;
      return fail(undefined, `Unknown subcommand '${String(unknown)}'.`);
    }
  }
}

/**
 * Commands that change the cluster or what gpu-medic does, and `diag` (it changes nothing, but it loads every GPU
 * of the node for minutes): they need an authorized user. `status`, `exclusions`, `history`, `report` and `help`
 * are open to everyone in the channel.
 */
export function isDestructive(cmd: GpuCommand): boolean {
  switch (cmd.kind) {
    case 'status':
    case 'exclusions':
    case 'history':
    case 'report':
    case 'help':
      return false;
    default:
      return true;
  }
}

/** Commands that act on a node at once: they get a confirmation step before anything runs. */
export function needsConfirmation(cmd: GpuCommand): cmd is Extract<GpuCommand, { kind: NodeActionKind }> {
  return (NodeActionKinds as readonly string[]).includes(cmd.kind);
}

/**
 * The alert buttons' value, `{"i":incidentId,"n":node,"c":cluster}`, as Slack sends it back. Alerts posted
 * before the fleet have no `c`: they are this cluster's.
 */
export const ButtonValue = z
  .object({
    i: z.string().min(1).max(200),
    n: NodeName,
    c: z.string().regex(clusterNamePattern).optional(),
  })
  .transform(({ i, n, c }) => ({ incidentId: i, node: n, ...(c !== undefined ? { cluster: c } : {}) }));
export type ButtonValue = z.output<typeof ButtonValue>;

/** Parse a button value from an interaction payload. Never throws. */
export function parseButtonValue(value: unknown): ButtonValue | { error: string } {
  if (typeof value !== 'string' || value.length === 0) return { error: 'button value missing' };
  if (value.length > 2000) return { error: 'button value too long' };
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    return { error: 'button value is not JSON' };
  }
  const parsed = ButtonValue.safeParse(json);
  if (!parsed.success) {
    return {
      error: `invalid button value: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; ')}`,
    };
  }
  return parsed.data;
}

/** The confirmation buttons' value of `/gpu cordon|uncordon|reboot|replace`, as Slack sends it back. */
export const CommandButtonValue = z
  .object({
    k: z.enum(NodeActionKinds),
    n: NodeName,
    r: z.string().max(500).optional(),
    g: z.number().int().min(0).max(99).optional(),
    c: z.string().regex(clusterNamePattern).optional(),
  })
  .transform(
    ({ k, n, r, g, c }): Extract<GpuCommand, { kind: NodeActionKind }> => ({
      kind: k,
      node: n,
      ...(c !== undefined ? { cluster: c } : {}),
      ...(r ? { reason: r } : {}),
      ...(g !== undefined && k === 'reset' ? { gpu: g } : {}),
    }),
  );

/** Parse a confirmation button value. Never throws. */
export function parseCommandButtonValue(
  value: unknown,
): Extract<GpuCommand, { kind: NodeActionKind }> | { error: string } {
  if (typeof value !== 'string' || value.length === 0) return { error: 'button value missing' };
  if (value.length > 2000) return { error: 'button value too long' };
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    return { error: 'button value is not JSON' };
  }
  const parsed = CommandButtonValue.safeParse(json);
  return parsed.success
    ? parsed.data
    : {
        error: `invalid button value: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; ')}`,
      };
}

/**
 * Who may run destructive commands and press destructive buttons: Slack user IDs on an allow-list and/or the
 * members of one user group. Checked server-side on every command and click; a Slack error denies.
 */
import type { Logger } from 'pino';

export interface Authorizer {
  isAdmin(userId: string): Promise<boolean>;
}

/** Reads a user group's members (`usergroups.users.list`); throws on any Slack error. */
export type GroupMembersLookup = (groupId: string) => Promise<string[]>;

/** The slice of a WebClient the authorizer calls. */
export interface UsergroupsClient {
  usergroups: {
    users: { list(args: { usergroup: string }): Promise<{ ok?: boolean; users?: string[]; error?: string }> };
  };
}

export interface AuthorizerOptions {
  adminUsers: readonly string[];
  adminGroup?: string;
  /** How group members are read; defaults to `client.usergroups.users.list`. */
  lookup?: GroupMembersLookup;
  client?: UsergroupsClient;
  /** Group membership is cached this long; a removed admin keeps access at most this long. */
  cacheTtlMs?: number;
  now?: () => number;
  logger?: Logger;
}

export const defaultAuthzCacheTtlMs = 5 * 60_000;

export function clientGroupLookup(client: UsergroupsClient): GroupMembersLookup {
  return async (groupId) => {
    const answer = await client.usergroups.users.list({ usergroup: groupId });
    if (answer.ok === false || !Array.isArray(answer.users)) {
      throw new Error(`usergroups.users.list failed: ${answer.error ?? 'no users in answer'}`);
    }
    return answer.users.filter((u): u is string => typeof u === 'string');
  };
}

export function createAuthorizer(options: AuthorizerOptions): Authorizer {
  const admins = new Set(options.adminUsers.map((u) => u.trim()).filter(Boolean));
  const group = options.adminGroup?.trim() || undefined;
  const ttl = options.cacheTtlMs ?? defaultAuthzCacheTtlMs;
  const now = options.now ?? Date.now;
  const log = options.logger?.child({ component: 'slack-authz' });
  const lookup = options.lookup ?? (options.client ? clientGroupLookup(options.client) : undefined);
  if (group && !lookup) throw new Error('createAuthorizer: adminGroup needs a client or a lookup');

  let cached: { members: Set<string>; at: number } | undefined;
  // One lookup at a time: a burst of clicks must not become a burst of usergroups calls.
  let inflight: Promise<Set<string> | undefined> | undefined;

  async function members(groupId: string, read: GroupMembersLookup): Promise<Set<string> | undefined> {
    if (cached && now() - cached.at < ttl) return cached.members;
    inflight ??= (async () => {
      try {
        const list = await read(groupId);
        cached = { members: new Set(list), at: now() };
        return cached.members;
      } catch (error) {
        // Fail closed: an unreadable group grants nothing (the allow-list still works).
        cached = undefined;
        log?.error({ err: error, group: groupId }, 'admin group lookup failed; denying group members');
        return undefined;
      } finally {
        inflight = undefined;
      }
    })();
    return inflight;
  }

  return {
    async isAdmin(userId: string): Promise<boolean> {
      if (typeof userId !== 'string' || userId.length === 0) return false;
      if (admins.has(userId)) return true;
      if (!group || !lookup) return false;
      const set = await members(group, lookup);
      return set?.has(userId) ?? false;
    },
  };
}

import { webApi } from '@slack/bolt';
import { describe, expect, it } from 'vitest';
import { SIM_SLACK_BOT_TOKEN, startSimSlack } from '../sim/slack-server.js';
import { createAuthorizer, type UsergroupsClient } from './authz.js';

describe('createAuthorizer', () => {
  it('allows listed users and denies everyone else without a group', async () => {
    const authz = createAuthorizer({ adminUsers: ['UADMIN0001', ' UADMIN0002 '] });
    expect(await authz.isAdmin('UADMIN0001')).toBe(true);
    expect(await authz.isAdmin('UADMIN0002')).toBe(true);
    expect(await authz.isAdmin('UOTHER0001')).toBe(false);
    expect(await authz.isAdmin('')).toBe(false);
  });

  it('caches group members for the TTL, then reads them again', async () => {
    let now = 0;
    let lookups = 0;
    let members = ['UGROUP0001'];
    const authz = createAuthorizer({
      adminUsers: [],
      adminGroup: 'S0ADMINS01',
      cacheTtlMs: 1000,
      now: () => now,
      lookup: async () => {
        lookups += 1;
        return members;
      },
    });
    expect(await Promise.all([authz.isAdmin('UGROUP0001'), authz.isAdmin('UOTHER0001')])).toEqual([
      true,
      false,
    ]);
    expect(lookups).toBe(1);
    members = [];
    now = 999;
    expect(await authz.isAdmin('UGROUP0001')).toBe(true);
    now = 1000;
    expect(await authz.isAdmin('UGROUP0001')).toBe(false);
    expect(lookups).toBe(2);
  });

  it('fails closed on a Slack error, keeps the allow-list, and recovers', async () => {
    let fail = true;
    const authz = createAuthorizer({
      adminUsers: ['UADMIN0001'],
      adminGroup: 'S0ADMINS01',
      lookup: async () => {
        if (fail) throw new Error('ratelimited');
        return ['UGROUP0001'];
      },
    });
    expect(await authz.isAdmin('UGROUP0001')).toBe(false);
    expect(await authz.isAdmin('UADMIN0001')).toBe(true);
    fail = false;
    expect(await authz.isAdmin('UGROUP0001')).toBe(true);
  });

  it('reads the group with usergroups.users.list through a real WebClient', async () => {
    const sim = await startSimSlack({ usergroups: { S0ADMINS01: ['UGROUP0001'] } });
    try {
      const client = new webApi.WebClient(SIM_SLACK_BOT_TOKEN, {
        slackApiUrl: sim.url,
        retryConfig: { retries: 0 },
      }) as unknown as UsergroupsClient;
      const ok = createAuthorizer({ adminUsers: [], adminGroup: 'S0ADMINS01', client });
      expect(await ok.isAdmin('UGROUP0001')).toBe(true);
      const missing = createAuthorizer({ adminUsers: [], adminGroup: 'S0NOSUCH01', client });
      expect(await missing.isAdmin('UGROUP0001')).toBe(false);
      expect(sim.calls.map((c) => [c.method, c.args.usergroup])).toEqual([
        ['usergroups.users.list', 'S0ADMINS01'],
        ['usergroups.users.list', 'S0NOSUCH01'],
      ]);
    } finally {
      await sim.close();
    }
  });
});

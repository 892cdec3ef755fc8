/**
 * Slack, wired once for every command that talks to it: who is an admin, the delivery worker that posts
 * alerts and thread replies through the outbox, and — for `run` — the Bolt app that receives events,
 * clicks and slash commands.
 */

import type { Config } from '../config/config.js';
import type { FleetContext } from '../fleet/ports.js';
import { opsHandler } from '../http/ops-server.js';
import type { Logger } from '../log/logger.js';
import type { Authorize } from '../remediate/services.js';
import { createSlackApp, type SlackApp } from '../slack/app.js';
import { type Authorizer, createAuthorizer, type UsergroupsClient } from '../slack/authz.js';
import { type ChatPort, userIdFromActor } from '../slack/chat-port.js';
import { createDeliveryClient, SlackDelivery } from '../slack/delivery.js';
import { opsRoutesOf, type Runtime } from './runtime.js';

/** Slack is on when a bot token and a channel are configured. */
export function slackEnabled(config: Config): boolean {
  const slack = config.slack;
  return slack.mode !== 'disabled' && Boolean(slack.botToken && slack.channel);
}

/** Who may act from Slack: SLACK_ADMIN_USERS and the members of SLACK_ADMIN_GROUP. */
export function createSlackAuthorizer(config: Config, logger: Logger): Authorizer {
  const slack = config.slack;
  return createAuthorizer({
    adminUsers: slack.adminUsers,
    adminGroup: slack.adminGroup,
    client: slack.botToken
      ? (createDeliveryClient(slack.botToken, slack.apiUrl) as unknown as UsergroupsClient)
      : undefined,
    logger,
  });
}

/** The monitor and the CLI are trusted; a Slack user must be an admin; nobody else. */
export function authorizeWith(authz: Authorizer | undefined): Authorize {
  return async (actor) => {
    if (actor === 'monitor' || actor.startsWith('cli:')) return true;
    const user = userIdFromActor(actor);
    return user !== undefined && authz !== undefined && (await authz.isAdmin(user));
  };
}

export function createSlackDelivery(rt: Pick<Runtime, 'config' | 'store'>, logger: Logger): SlackDelivery {
  const slack = rt.config.slack;
  if (!slack.botToken || !slack.channel)
    throw new Error('Slack delivery needs SLACK_BOT_TOKEN and SLACK_CHANNEL');
  return new SlackDelivery({
    outbox: rt.store.outbox,
    refs: rt.store.slackRefs,
    channel: slack.channel,
    client: createDeliveryClient(slack.botToken, slack.apiUrl),
    logger,
  });
}

/**
 * The Bolt app: Socket Mode with an app token, else HTTP mode on PORT, where the receiver also answers the
 * ops routes with the runtime's one readiness answer.
 */
export function createSlackReceiver(
  rt: Runtime,
  deps: { port: ChatPort; delivery: SlackDelivery; authz: Authorizer; logger: Logger; fleet?: FleetContext },
): SlackApp {
  const { config } = rt;
  const slack = config.slack;
  if (!slack.botToken) throw new Error('the Slack app needs SLACK_BOT_TOKEN');
  return createSlackApp({
    botToken: slack.botToken,
    signingSecret: slack.signingSecret ?? '',
    appToken: slack.mode === 'socket' ? slack.appToken : undefined,
    slackApiUrl: slack.apiUrl,
    port: config.http.port,
    chat: deps.port,
    authz: deps.authz,
    sink: deps.delivery,
    cluster: config.clusterName,
    ...(deps.fleet ? { fleet: deps.fleet } : {}),
    ops: opsHandler(opsRoutesOf(rt, deps.logger), deps.logger),
    logger: deps.logger,
  });
}

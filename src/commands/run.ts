import { connectChat, createChatPort } from '../chat-bridge.js';
import { createLogger } from '../log/logger.js';
import { createRuntime } from '../runtime.js';
import { createSlackApp } from '../slack/app.js';
import { createAuthorizer, type UsergroupsClient } from '../slack/authz.js';
import { userIdFromActor } from '../slack/chat-port.js';
import { createDeliveryClient, SlackDelivery } from '../slack/delivery.js';
import { configOrExit } from './load-config.js';

/**
 * `gpu-medic run`: the production process. Config, store, leader election, monitor, engine, notification
 * fan-out and the Slack app in one process; SIGTERM stops taking work, lets the current step persist and
 * closes the database.
 */
export async function main(_argv: string[]): Promise<number> {
  const config = configOrExit();
  const logger = createLogger({ level: config.log.level });
  const slack = config.slack;
  const authz =
    slack.mode === 'disabled'
      ? undefined
      : createAuthorizer({
          adminUsers: slack.adminUsers,
          adminGroup: slack.adminGroup,
          client: slack.botToken
            ? (createDeliveryClient(slack.botToken, slack.apiUrl) as unknown as UsergroupsClient)
            : undefined,
          logger,
        });
  const rt = await createRuntime(config, {
    logger,
    opsServer: slack.mode !== 'http',
    leaderElection: true,
    authorize: async (actor) => {
      if (actor === 'monitor' || actor.startsWith('cli:')) return true;
      const user = userIdFromActor(actor);
      return user !== undefined && authz !== undefined && (await authz.isAdmin(user));
    },
  });

  let stopSlack: (() => Promise<void>) | undefined;
  if (slack.mode !== 'disabled' && slack.botToken && slack.channel && authz) {
    const port = createChatPort(rt);
    const delivery = new SlackDelivery({
      outbox: rt.store.outbox,
      refs: rt.store.slackRefs,
      channel: slack.channel,
      client: createDeliveryClient(slack.botToken, slack.apiUrl),
      logger,
    });
    const disconnect = connectChat(rt, delivery, port, logger);
    const app = createSlackApp({
      botToken: slack.botToken,
      signingSecret: slack.signingSecret ?? '',
      appToken: slack.mode === 'socket' ? slack.appToken : undefined,
      slackApiUrl: slack.apiUrl,
      port: config.http.port,
      chat: port,
      authz,
      sink: delivery,
      ready: () => rt.isReady(),
      logger,
    });
    delivery.start();
    await app.start();
    stopSlack = async () => {
      disconnect();
      await app.stop();
      await delivery.stop();
    };
  } else {
    logger.warn(
      'Slack is not configured (SLACK_BOT_TOKEN / SLACK_CHANNEL): alerts go to logs and sinks only',
    );
  }

  await rt.start();
  logger.info({ cluster: config.clusterName, dryRun: config.dryRun, slack: slack.mode }, 'gpu-medic running');
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  logger.info('shutting down: no new work; the current step is persisted');
  await stopSlack?.();
  await rt.stop();
  return 0;
}

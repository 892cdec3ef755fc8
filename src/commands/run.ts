import { connectChat, createChatPort } from '../chat-bridge.js';
import { alertmanagerRoute } from '../http/alertmanager.js';
import { createLogger } from '../log/logger.js';
import { renderMetrics } from '../metrics/metrics.js';
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
  const slackOn = slack.mode !== 'disabled' && Boolean(slack.botToken && slack.channel);
  const authz = !slackOn
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
    // Exactly one server owns PORT: the Bolt HTTP receiver in Slack HTTP mode (it serves the ops routes
    // too), the ops server otherwise (Socket Mode opens no port of its own).
    opsServer: !(slackOn && slack.mode === 'http'),
    leaderElection: true,
    authorize: async (actor) => {
      if (actor === 'monitor' || actor.startsWith('cli:')) return true;
      const user = userIdFromActor(actor);
      return user !== undefined && authz !== undefined && (await authz.isAdmin(user));
    },
  });

  let stopSlack: (() => Promise<void>) | undefined;
  let disconnectChat: (() => void) | undefined;
  if (slackOn && slack.botToken && slack.channel && authz) {
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
      metrics: () => renderMetrics(rt.metrics),
      // Alertmanager pushes (issue 15): off unless ALERTMANAGER_TOKEN is set.
      alertmanager: alertmanagerRoute({
        token: config.alertmanager.token,
        monitor: rt.monitor,
        listNodes: () => rt.sensing.watcher.list(),
        logger,
      }),
      logger,
    });
    delivery.start();
    await app.start();
    stopSlack = async () => {
      // No new clicks or commands; then the worker stops. Progress the engine still publishes while it
      // winds down is written to the outbox (the bus stays connected) and delivered on the next start.
      await app.stop();
      await delivery.stop();
    };
    disconnectChat = disconnect;
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
  disconnectChat?.();
  // Everything is persisted and closed. A Socket Mode client that never connected keeps retrying
  // apps.connections.open on its own timers, which Bolt's stop() does not cancel: without this the
  // process would ignore SIGTERM until the orchestrator kills it.
  setTimeout(() => {
    logger.warn('handles still open after shutdown; exiting');
    process.exit(0);
  }, 2000).unref();
  return 0;
}

/**
 * The application as the commands start it: the runtime (runtime.ts) with its chat surface — Slack when
 * configured, else the command's local chat (the demo's console) — connected once. `gpu-medic run` and
 * `gpu-medic demo` only choose options.
 */

import type { Config } from '../config/config.js';
import { componentLogger, type Logger } from '../log/logger.js';
import type { SlackApp } from '../slack/app.js';
import type { ChatPort, ChatSink } from '../slack/chat-port.js';
import type { SlackDelivery } from '../slack/delivery.js';
import { type ChatConnection, connectChat, createChatPort } from './chat.js';
import { fleetContextOf, requestWorker } from './fleet.js';
import { createRuntime, type Runtime, type RuntimeOptions } from './runtime.js';
import {
  authorizeWith,
  createSlackAuthorizer,
  createSlackDelivery,
  createSlackReceiver,
  slackEnabled,
} from './slack.js';

export interface AppOptions {
  logger: Logger;
  /** Elect a leader through a Lease before acting (`run`). */
  leaderElection?: boolean;
  /**
   * Answer people (`run`): own PORT (the ops routes, and Slack's events in HTTP mode) and receive Slack's
   * events, clicks and slash commands. Without it Slack, when configured, is only posted to.
   */
  serve?: boolean;
  /** Where chat goes when Slack is not configured (the demo's console), built over the chat port. */
  localChat?: (port: ChatPort) => ChatSink;
  engine?: RuntimeOptions['engine'];
}

export interface App {
  runtime: Runtime;
  chat: ChatPort;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function createApp(config: Config, opts: AppOptions): Promise<App> {
  const { logger } = opts;
  const slackOn = slackEnabled(config);
  // Admins matter only where Slack's requests are received; elsewhere Slack users may not act.
  const authz = slackOn && opts.serve ? createSlackAuthorizer(config, logger) : undefined;
  const runtime = await createRuntime(config, {
    logger,
    // Exactly one server owns PORT: the Bolt HTTP receiver in Slack HTTP mode (it serves the ops routes
    // too), the ops server otherwise (Socket Mode opens no port of its own).
    opsServer: Boolean(opts.serve) && !(slackOn && config.slack.mode === 'http'),
    leaderElection: Boolean(opts.leaderElection),
    authorize: authorizeWith(authz),
    ...(opts.engine ? { engine: opts.engine } : {}),
  });
  const port = createChatPort(runtime);
  const delivery = slackOn ? createSlackDelivery(runtime, logger) : undefined;
  const local = delivery ? undefined : opts.localChat?.(port);
  const sink: ChatSink | undefined = delivery ?? local;
  // With leader election, a process acts only for its cluster and only while it leads: every other
  // Slack request goes to its cluster's leader through the database.
  const fleet = opts.leaderElection ? fleetContextOf(runtime) : undefined;
  const receiver =
    delivery && authz && opts.serve
      ? createSlackReceiver(runtime, { port, delivery, authz, logger, ...(fleet ? { fleet } : {}) })
      : undefined;
  // With several replicas over one database, only the acting one posts what the outbox holds: two
  // delivery workers would post every alert twice.
  if (delivery && fleet) {
    runtime.whileActing({
      start: async () => delivery.start(),
      stop: () => delivery.stop(),
    });
  }
  if (receiver && fleet) {
    runtime.whileActing(
      requestWorker({
        ...runtime,
        execute: (request) => receiver.execute(request),
        logger: componentLogger(logger, 'fleet'),
      }),
    );
  }
  if (!slackOn && opts.serve) {
    componentLogger(logger, 'app').warn(
      'Slack is not configured (SLACK_BOT_TOKEN / SLACK_CHANNEL): alerts go to logs and sinks only',
    );
  }
  const connection = sink ? connectChat(runtime, sink, port, logger) : undefined;
  return {
    runtime,
    chat: port,
    async start() {
      if (!fleet) delivery?.start();
      await receiver?.start();
      await runtime.start();
    },
    async stop() {
      await stopIntake(receiver, delivery, local ? connection : undefined);
      await runtime.stop();
      connection?.disconnect();
    },
  };
}

/**
 * No new clicks or commands; then the delivery worker stops. Progress the engine still publishes while it
 * winds down is written to the outbox (the bus stays connected) and delivered on the next start; a local
 * chat has no outbox and is disconnected at once.
 */
async function stopIntake(
  receiver: SlackApp | undefined,
  delivery: SlackDelivery | undefined,
  local: ChatConnection | undefined,
): Promise<void> {
  await receiver?.stop();
  await delivery?.stop();
  local?.disconnect();
}

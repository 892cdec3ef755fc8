/**
 * The Bolt app: Socket Mode when an app token is configured, otherwise HTTP mode on `POST /slack/events`
 * with signing-secret verification (Bolt answers 401 to a forged or stale request). In HTTP mode the
 * receiver owns PORT and also serves `/healthz`, `/readyz` and `/metrics`; in Socket Mode the app opens no
 * port at all, so the caller's ops server (http/ops-server.ts) owns PORT — exactly one server per mode.
 * Start-up never waits on Slack: the bot identity (auth.test) is resolved in the background with backoff,
 * and requests are served meanwhile.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  App,
  type AppOptions,
  type Authorize,
  type CustomRoute,
  HTTPReceiver,
  LogLevel,
  type Receiver,
  SocketModeReceiver,
  webApi,
} from '@slack/bolt';
import type { Logger } from 'pino';
import { backoffDelay } from '../domain/backoff.js';
import type { FleetContext } from '../fleet/ports.js';
import type { LeaderRequest } from '../fleet/requests.js';
import { ALERTMANAGER_PATH } from '../http/alertmanager.js';
import type { Authorizer } from './authz.js';
import type { ChatPort, ChatSink } from './chat-port.js';
import type { ListenerDeps } from './listeners/deps.js';
import { registerListeners } from './listeners/index.js';
import { executeLeaderRequest, type LeaderAnswer } from './listeners/leader-requests.js';

type BoltLogger = NonNullable<AppOptions['logger']>;

export const slackEventsPath = '/slack/events';

export interface SlackAppOptions {
  botToken: string;
  signingSecret: string;
  /** Set → Socket Mode. */
  appToken?: string;
  slackApiUrl?: string;
  /** HTTP mode: the port of the events endpoint and the ops routes (unused in Socket Mode). 0 = ephemeral. */
  port: number;
  host?: string;
  chat: ChatPort;
  authz: Authorizer;
  /** Where root updates after a click go (the Slack delivery outbox). */
  sink?: ChatSink;
  /** This process's cluster (CLUSTER_NAME). */
  cluster?: string;
  /** Set when requests this process may not act on go to their cluster's leader. */
  fleet?: FleetContext;
  /**
   * HTTP mode: `/healthz`, `/readyz` and `/metrics` are answered by this handler — the one the ops server
   * uses in the other modes, so every mode gives one answer. It returns false for a route it does not
   * serve (answered 404). Without it the receiver serves no ops route.
   */
  ops?: (req: IncomingMessage, res: ServerResponse) => boolean;
  logger?: Logger;
  /** Known bot identity: skips auth.test entirely. */
  botId?: string;
  botUserId?: string;
  /** Backoff of the background auth.test. */
  identityRetry?: { baseMs?: number; maxMs?: number };
}

export interface BotIdentity {
  botId: string;
  botUserId: string;
}

export interface SlackApp {
  app: App;
  receiver: Receiver;
  /** HTTP mode: listening when it resolves; returns the bound port. */
  start(): Promise<{ port?: number }>;
  stop(): Promise<void>;
  /** The bot identity once known (given, or read by auth.test). */
  identity(): BotIdentity | undefined;
  /** Executes a request another process queued for this cluster's leader, as if received here. */
  execute(request: LeaderRequest): Promise<LeaderAnswer>;
}

/** Bolt's logger interface over pino, so Bolt's own messages land in the JSON logs. */
export function boltLogger(logger?: Logger): BoltLogger {
  const log = logger?.child({ component: 'bolt' });
  let level = LogLevel.INFO;
  const emit =
    (fn: 'debug' | 'info' | 'warn' | 'error') =>
    (...msg: unknown[]) => {
      if (!log) return;
      const err = msg.find((m) => m instanceof Error);
      const text = msg
        .filter((m) => !(m instanceof Error))
        .map((m) => (typeof m === 'string' ? m : JSON.stringify(m)))
        .join(' ');
      log[fn](err ? { err } : {}, text || 'bolt');
    };
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    setLevel: (l) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => {},
  };
}

const opsPaths = ['/healthz', '/readyz', '/metrics'];

function opsRoutes(ops: NonNullable<SlackAppOptions['ops']>): CustomRoute[] {
  const handler: CustomRoute['handler'] = (req, res) => {
    if (!ops(req, res)) res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
  };
  return [
    ...opsPaths.map((path) => ({ path, method: ['GET', 'HEAD'], handler })),
    // Alertmanager pushes: the same handler answers them (404 while ALERTMANAGER_TOKEN is unset).
    { path: ALERTMANAGER_PATH, method: ['POST'], handler },
  ];
}

export function createSlackApp(options: SlackAppOptions): SlackApp {
  const log = options.logger?.child({ component: 'slack-app' });
  const blog = boltLogger(options.logger);
  const socketMode = Boolean(options.appToken);

  // No customRoutes in Socket Mode: with any, Bolt listens on its own HTTP server (installerOptions.port,
  // default 3000) with no error handler, which collides with the ops server on PORT.
  const receiver: HTTPReceiver | SocketModeReceiver = options.appToken
    ? new SocketModeReceiver({ appToken: options.appToken, logger: blog })
    : new HTTPReceiver({
        signingSecret: options.signingSecret,
        endpoints: slackEventsPath,
        port: options.port,
        customRoutes: options.ops ? opsRoutes(options.ops) : [],
        logger: blog,
      });

  let identity: BotIdentity | undefined =
    options.botId && options.botUserId ? { botId: options.botId, botUserId: options.botUserId } : undefined;

  // Our own authorize instead of Bolt's token mode: Bolt would call auth.test in the constructor and an
  // unreachable Slack would kill the process with an unhandled rejection.
  const authorize: Authorize<boolean> = async () => ({
    botToken: options.botToken,
    ...(identity ? { botId: identity.botId, botUserId: identity.botUserId } : {}),
  });

  const app = new App({
    receiver,
    authorize,
    logger: blog,
    clientOptions: {
      ...(options.slackApiUrl ? { slackApiUrl: options.slackApiUrl } : {}),
      // Interactive answers are best effort and must not queue behind a rate limit for minutes.
      retryConfig: { retries: 2, factor: 2, minTimeout: 200, maxTimeout: 2000 },
    },
  });
  app.error(async (error) => {
    log?.error({ err: error }, 'unhandled error in a slack listener');
  });
  const deps: ListenerDeps = {
    chat: options.chat,
    authz: options.authz,
    ...(options.sink ? { sink: options.sink } : {}),
    ...(options.logger ? { logger: options.logger.child({ component: 'slack-listeners' }) } : {}),
    ...(options.cluster !== undefined ? { cluster: options.cluster } : {}),
    ...(options.fleet ? { fleet: options.fleet } : {}),
  };
  registerListeners(app, deps);

  // Answers to queued requests: no Bolt request carries a client then (Bolt's own has no token bound).
  const answerClient = new webApi.WebClient(options.botToken, {
    retryConfig: { retries: 2, factor: 2, minTimeout: 200, maxTimeout: 2000 },
    logLevel: webApi.LogLevel.ERROR,
    ...(options.slackApiUrl ? { slackApiUrl: options.slackApiUrl } : {}),
  });
  const identityClient = new webApi.WebClient(options.botToken, {
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    logLevel: webApi.LogLevel.ERROR,
    ...(options.slackApiUrl ? { slackApiUrl: options.slackApiUrl } : {}),
  });
  let stopped = false;
  let identityTimer: NodeJS.Timeout | undefined;
  const baseMs = options.identityRetry?.baseMs ?? 1000;
  const maxMs = options.identityRetry?.maxMs ?? 60_000;

  function resolveIdentity(attempt: number): void {
    if (identity || stopped) return;
    identityClient.auth.test().then(
      (r) => {
        if (typeof r.bot_id === 'string' && typeof r.user_id === 'string') {
          identity = { botId: r.bot_id, botUserId: r.user_id };
          log?.info({ botId: r.bot_id, botUserId: r.user_id, team: r.team }, 'slack identity resolved');
        }
      },
      (error: unknown) => {
        const delay = backoffDelay(attempt, { baseMs, capMs: maxMs });
        log?.warn({ err: error, retryInMs: delay, attempt }, 'slack unreachable (auth.test); retrying');
        if (!stopped) identityTimer = setTimeout(() => resolveIdentity(attempt + 1), delay);
      },
    );
  }

  let started = false;
  return {
    app,
    receiver,
    identity: () => identity,
    // Executed, never routed again: the request is this cluster's, and this process is its leader.
    execute: (request) => executeLeaderRequest(request, deps, answerClient),
    async start() {
      stopped = false;
      resolveIdentity(0);
      if (socketMode) {
        // Connecting can take long (or forever without network): the caller's ops server answers meanwhile.
        started = true;
        app.start().then(
          () => log?.info('slack socket mode connected'),
          (error: unknown) => log?.error({ err: error }, 'slack socket mode failed to start'),
        );
        return {};
      }
      const server = (await app.start(
        options.host ? { port: options.port, host: options.host } : options.port,
      )) as Server;
      started = true;
      const port = (server.address() as AddressInfo | null)?.port;
      log?.info({ port, path: slackEventsPath }, 'slack http receiver listening');
      return port !== undefined ? { port } : {};
    },
    async stop() {
      stopped = true;
      if (identityTimer) clearTimeout(identityTimer);
      if (!started) return;
      started = false;
      try {
        await app.stop();
      } catch (error) {
        log?.warn({ err: error }, 'slack app stop failed');
      }
    },
  };
}

/**
 * pino JSON logs. Secrets are removed twice: by key (`redact`, for objects we log) and by shape (a hook that
 * scrubs Slack-token-looking strings from the message text, for the error message that quotes one).
 */
import { type DestinationStream, type Logger, type LoggerOptions, pino } from 'pino';

export type { Logger } from 'pino';

const secretKeys = [
  'token',
  'botToken',
  'appToken',
  'accessToken',
  'refreshToken',
  'sessionToken',
  'secret',
  'signingSecret',
  'webhookSecret',
  'clientSecret',
  'secretAccessKey',
  'password',
  'authorization',
  'Authorization',
  'cookie',
];

/** Every secret-bearing key at the top level and up to three levels down (pino's `*` is one level). */
export const redactPaths: string[] = [
  ...secretKeys.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`]),
  'headers["x-slack-signature"]',
  '*.headers["x-slack-signature"]',
  '*.*.headers["x-slack-signature"]',
  'headers["x-gpumedic-signature"]',
  '*.headers["x-gpumedic-signature"]',
  '*.*.headers["x-gpumedic-signature"]',
  'headers["x-amz-security-token"]',
  '*.headers["x-amz-security-token"]',
  '*.*.headers["x-amz-security-token"]',
];

export const redactCensor = '[redacted]';

/** Slack tokens (xoxb-, xoxp-, xoxa-, xapp- …) and AWS secret-ish bearer strings that end up inside text. */
const tokenPattern = /\b(xox[abposre]|xapp)-[A-Za-z0-9-]{4,}/g;

export function scrubSecrets(text: string): string {
  return text.replace(tokenPattern, (m) => `${m.slice(0, m.indexOf('-') + 1)}${redactCensor}`);
}

export interface CreateLoggerOptions {
  level?: string;
  /** Where JSON lines go (tests pass a stream to read them back); default stdout. */
  destination?: DestinationStream;
  base?: Record<string, unknown>;
}

export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const opts: LoggerOptions = {
    level: options.level ?? 'info',
    base: { app: 'gpu-medic', ...options.base },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: redactPaths, censor: redactCensor },
    formatters: { level: (label) => ({ level: label }) },
    hooks: {
      logMethod(args, method) {
        const scrubbed = args.map((a) => (typeof a === 'string' ? scrubSecrets(a) : a)) as Parameters<
          typeof method
        >;
        method.apply(this, scrubbed);
      },
    },
    serializers: {
      err: (err: unknown) => {
        const s = pino.stdSerializers.err(err as Error);
        if (typeof s.message === 'string') s.message = scrubSecrets(s.message);
        if (typeof s.stack === 'string') s.stack = scrubSecrets(s.stack);
        return s;
      },
    },
  };
  return options.destination ? pino(opts, options.destination) : pino(opts);
}

/** A child logger for one component: every line carries `component`. */
export function componentLogger(
  root: Logger,
  component: string,
  bindings: Record<string, unknown> = {},
): Logger {
  return root.child({ component, ...bindings });
}

/** A logger that writes nothing, for callers that were given none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

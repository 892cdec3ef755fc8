/**
 * Small helpers shared by the simulator's HTTP fakes (AWS, Slack): reading a bounded, possibly
 * compressed body; parsing form bodies; escaping XML; starting a loopback server that closes fast.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzip, inflate } from 'node:zlib';

/** Raised when a body cannot be read; `status` is what the fake should answer. */
export class BodyError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'BodyError';
  }
}

const DEFAULT_BODY_LIMIT = 8 * 1024 * 1024;

function decompress(fn: typeof gunzip, buf: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    fn(buf, (err, out) => (err ? reject(err) : resolve(out)));
  });
}

/**
 * Reads the whole request body. The AWS SDK gzips large CloudWatch PutMetricData bodies
 * (request compression), so `Content-Encoding: gzip` is undone here.
 */
export async function readBody(req: IncomingMessage, limit = DEFAULT_BODY_LIMIT): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) throw new BodyError(`request body larger than ${limit} bytes`, 413);
    chunks.push(buf);
  }
  let body = chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks);
  const encoding = String(req.headers['content-encoding'] ?? '').toLowerCase();
  try {
    if (encoding === 'gzip') body = await decompress(gunzip, body);
    else if (encoding === 'deflate') body = await decompress(inflate, body);
  } catch {
    throw new BodyError(`body is not valid ${encoding}`, 400);
  }
  if (body.length > limit) throw new BodyError(`request body larger than ${limit} bytes`, 413);
  return body.toString('utf8');
}

/** Parses `a=1&b=2` (form bodies and query strings); the last value of a repeated key wins. */
export function parseForm(text: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const [k, v] of new URLSearchParams(text)) out[k] = v;
  return out;
}

const XML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

export function xmlEscape(value: string | number | boolean): string {
  return String(value).replace(/[&<>"']/g, (c) => XML_ESCAPES[c] ?? c);
}

/** `<name>value</name>`, escaped; omitted entirely when value is undefined. */
export function xmlTag(name: string, value: string | number | boolean | undefined): string {
  return value === undefined ? '' : `<${name}>${xmlEscape(value)}</${name}>`;
}

export function newRequestId(): string {
  return randomUUID();
}

export function send(
  res: ServerResponse,
  status: number,
  contentType: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  // A client that gave up (timeout) has closed the socket: nothing to answer, nothing to crash on.
  if (res.writableEnded || res.destroyed) return;
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

export function pathAndQuery(req: IncomingMessage): {
  path: string;
  rawPath: string;
  query: Record<string, string>;
} {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  let path = rawPath;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    // Keep the raw path: the fake answers it as unknown rather than crashing.
  }
  return { path, rawPath, query: q < 0 ? {} : parseForm(url.slice(q + 1)) };
}

export function headerRecord(req: IncomingMessage): Record<string, string | string[] | undefined> {
  return { ...req.headers };
}

/** Cancels timers of late answers so `close()` never waits for them. */
export class PendingTimers {
  private readonly timers = new Set<NodeJS.Timeout>();

  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  clear(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

export interface StartedServer {
  server: Server;
  /** `http://127.0.0.1:PORT` without a trailing slash. */
  origin: string;
  close(): Promise<void>;
}

/** Listens on loopback (ephemeral port by default); `close()` drops keep-alive connections too. */
export async function listen(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  port = 0,
  onClose?: () => void,
): Promise<StartedServer> {
  const server = createServer({ keepAliveTimeout: 30_000 }, handler);
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  const { port: actual } = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    server,
    origin: `http://127.0.0.1:${actual}`,
    close() {
      closed ??= new Promise<void>((resolve) => {
        onClose?.();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

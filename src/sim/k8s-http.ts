/**
 * The simulated Kubernetes API server's wire helpers: the audit record of a request, the route table's
 * shape, `Status` error bodies, list `continue` tokens, JSON bodies.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SimCluster } from './cluster.js';
import type { RecordedRequest } from './recorder.js';
import { ApiError } from './resource-store.js';

/** What the API server's audit log would say about a request: enough to derive RBAC rules from tests. */
export interface K8sRecordedRequest extends RecordedRequest {
  verb: string;
  resource?: string;
  subresource?: string;
  /** '' for the core group. */
  apiGroup?: string;
  namespace?: string;
  name?: string;
}

/** What the route modules share, one per server. */
export interface K8sContext {
  cluster: SimCluster;
  /** Every open streaming response (watches, hung proxies): cut when the server closes. */
  streams: Set<ServerResponse>;
  /** The open watch streams: `dropWatches` cuts them. */
  watches: Set<ServerResponse>;
}

export const JSON_TYPE = 'application/json';
const BODY_LIMIT = 4 * 1024 * 1024;
export const NODE_FIELDS = ['metadata.name', 'spec.unschedulable'] as const;
export const POD_FIELDS = ['metadata.name', 'metadata.namespace', 'spec.nodeName', 'status.phase'] as const;
export const GENERIC_FIELDS = ['metadata.name', 'metadata.namespace'] as const;

/** One request being served: what a route handler reads and answers. */
export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  query: URLSearchParams;
  body: string;
  params: string[];
  rec: K8sRecordedRequest;
  /** Records a streaming response (watch, hung proxy) when it starts rather than when it ends. */
  recordNow(status: number): void;
}

export interface Route {
  method: string;
  pattern: RegExp;
  operation: string;
  verb: string;
  resource?: string;
  subresource?: string;
  apiGroup?: string;
  /** Index of the namespace / name capture group, for the record. */
  ns?: number;
  name?: number;
  handle: (c: Ctx) => void;
}

export function statusBody(
  code: number,
  reason: string,
  message: string,
  details?: Record<string, unknown>,
): string {
  return JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  });
}

/** An opaque `continue` token: base64url of the next offset and the first page's resourceVersion. */
export function encodeContinue(offset: number, rv: string): string {
  return Buffer.from(JSON.stringify({ o: offset, rv })).toString('base64url');
}

export function decodeContinue(token: string): { offset: number; rv: string } | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (typeof v !== 'object' || v === null) return undefined;
    const { o, rv } = v as { o?: unknown; rv?: unknown };
    if (typeof o !== 'number' || !Number.isInteger(o) || o < 0 || typeof rv !== 'string') return undefined;
    return { offset: o, rv };
  } catch {
    return undefined;
  }
}

export function send(res: ServerResponse, status: number, body: string, type = JSON_TYPE): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

export function sendError(res: ServerResponse, e: ApiError): void {
  send(res, e.status, statusBody(e.status, e.reason, e.message, e.details));
}

export function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch (e) {
    throw new ApiError(400, 'BadRequest', `error decoding body: ${(e as Error).message}`);
  }
}

export function requireObject(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new ApiError(400, 'BadRequest', `${what}: body must be a JSON object`);
  return v as Record<string, unknown>;
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > BODY_LIMIT) {
        reject(new ApiError(413, 'RequestEntityTooLarge', 'request entity too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** One path segment, captured. */
export const seg = '([^/]+)';

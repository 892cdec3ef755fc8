/**
 * Faults the simulated API server serves instead of (or on top of) its normal answer, as a real EKS control
 * plane does now and then:
 * 500 on some evictions, 429 with `Retry-After` under priority-and-fairness load, 409 on conflicts, 410 Gone on
 * an expired watch, a watch stream cut mid-way, 401 for a bad token.
 *
 * Faults wait in a queue; a request takes the first fault that matches it (operation, verb, path prefix), which
 * is used up after `times` requests.
 */
import { z } from 'zod';

export const K8sFault = z
  .object({
    /** The recorded operation (`evictPod`, `replaceLease`, `watchNodes`, `proxyPod` …); any when omitted. */
    operation: z.string().min(1).optional(),
    /** The Kubernetes verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`); any when omitted. */
    verb: z.string().min(1).optional(),
    /** Only requests whose path starts with this. */
    pathPrefix: z.string().startsWith('/').optional(),
    /**
     * The answer's status: 500, 429, 409, 410, 401, 403, 503 … On a watch, 410 arrives as a real API server sends
     * it: a 200 stream carrying one `ERROR` event with a 410 `Expired` Status, then the end of the stream.
     */
    status: z.number().int().min(400).max(599).optional(),
    /** With 429 (or 503): the `Retry-After` header, in seconds, and `details.retryAfterSeconds`. */
    retryAfterSeconds: z.number().int().min(0).optional(),
    /** A watch is accepted and its current objects sent, then the connection is cut. */
    drop: z.boolean().optional(),
    message: z.string().optional(),
    /** How many requests get the fault; 1 when omitted. */
    times: z.number().int().min(1).optional(),
  })
  .strict()
  .refine((f) => f.status !== undefined || f.drop === true, 'a fault needs a status or drop: true');
export type K8sFault = z.infer<typeof K8sFault>;

export interface K8sFaultTarget {
  operation: string | undefined;
  verb: string;
  path: string;
}

const REASONS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  409: 'Conflict',
  410: 'Expired',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

/** The `Status` reason a real API server gives with this code. */
export function reasonFor(status: number): string {
  return REASONS[status] ?? (status >= 500 ? 'InternalError' : 'BadRequest');
}

/** What a real API server says with each code when nothing more specific applies. */
export function defaultFaultMessage(status: number, target: K8sFaultTarget): string {
  switch (status) {
    case 401:
      return 'Unauthorized';
    case 409:
      return `Operation cannot be fulfilled on ${target.path}: the object has been modified; please apply your changes to the latest version and try again`;
    case 410:
      return 'too old resource version';
    case 429:
      return 'Too many requests, please try again later.';
    case 500:
      return 'Internal error occurred: injected fault';
    default:
      return `${reasonFor(status)} (injected fault)`;
  }
}

export class K8sFaults {
  private readonly queue: (K8sFault & { left: number })[] = [];
  /** Faults served so far, in order (for assertions). */
  readonly served: (K8sFaultTarget & { status?: number; drop?: boolean })[] = [];

  /** Queues a fault (validated: a bad one throws a ZodError naming the field). */
  add(fault: K8sFault): void {
    const f = K8sFault.parse(fault);
    this.queue.push({ ...f, left: f.times ?? 1 });
  }

  clear(): void {
    this.queue.length = 0;
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Consumes one use of the first fault matching the request, if any. */
  take(target: K8sFaultTarget): K8sFault | undefined {
    const f = this.queue.find(
      (q) =>
        (q.operation === undefined || q.operation === target.operation) &&
        (q.verb === undefined || q.verb === target.verb) &&
        (q.pathPrefix === undefined || target.path.startsWith(q.pathPrefix)),
    );
    if (!f) return undefined;
    f.left -= 1;
    if (f.left <= 0) this.queue.splice(this.queue.indexOf(f), 1);
    this.served.push({
      ...target,
      ...(f.status !== undefined ? { status: f.status } : {}),
      ...(f.drop ? { drop: true } : {}),
    });
    return f;
  }
}

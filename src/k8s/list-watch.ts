import { type KubeConfig, Watch } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { backoffDelay } from '../domain/backoff.js';

/** The few object fields the loop itself reads; callers project the rest. */
export interface WatchedObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

export interface ListPage<T> {
  items: T[];
  metadata?: { resourceVersion?: string; _continue?: string; continue?: string };
}

export interface ListWatchHandler<T> {
  /** ADDED / MODIFIED, and every item of a (re)list. */
  upsert(obj: T): void;
  /** DELETED. */
  remove(obj: T): void;
  /** After a full (re)list: forget every key not in `seen` (deleted while the watch was down). */
  prune(seen: ReadonlySet<string>): void;
}

export interface ListWatchOptions<T> {
  /** Watch path, e.g. `/api/v1/nodes`. */
  path: string;
  labelSelector?: string;
  /** One page of the list; `continueToken` is undefined for the first page. */
  list(continueToken: string | undefined): Promise<ListPage<T>>;
  key(obj: T): string;
  handler: ListWatchHandler<T>;
  logger?: Logger;
  /** First retry delay after a failure; doubles up to `maxBackoffMs`. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Server-side watch timeout, so streams rotate (a new watch from the last resourceVersion). */
  watchTimeoutSeconds?: number;
}

/** Page size of a (re)list: bounds the transient memory of one response at large fleets. */
export const LIST_PAGE_SIZE = 500;

type WatchEnd = { kind: 'gone' } | { kind: 'failed'; err: unknown } | { kind: 'ended'; events: number };

/**
 * List + watch of one resource that keeps no objects of its own (unlike client-node's informer,
 * whose cache holds every full object): each object goes to the handler, which keeps only its
 * projection. Re-lists after 410 Gone / "too old resource version", after a failed watch (with
 * backoff), and re-watches from the last resourceVersion when a stream ends normally.
 */
export class ListWatch<T extends WatchedObject> {
  private stopped = false;
  private abort: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private resourceVersion = '';
  private failures = 0;
  /** Completed full lists (the first one resolves `start`). */
  lists = 0;

  constructor(
    private readonly kc: KubeConfig,
    private readonly opts: ListWatchOptions<T>,
  ) {}

  /** Resolves after the first full list; rejects if it fails. Then watches in the background. */
  async start(): Promise<void> {
    this.stopped = false;
    try {
      await this.relist();
    } catch (err) {
      const hint = hintFor(err);
      // A refused token or a missing grant at start-up: say what to fix rather than "HTTP-Code: 401".
      if (hint) throw new Error(`listing ${this.opts.path}: ${hint}`, { cause: err });
      throw err;
    }
    void this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.wake?.();
    this.abort?.abort();
    // Not awaiting the loop: a watch request still waiting for its response headers cannot be
    // aborted before client-node hands back its controller (it is aborted as soon as it does).
  }

  private async relist(): Promise<void> {
    const seen = new Set<string>();
    let token: string | undefined;
    let rv = '';
    do {
      const page = await this.opts.list(token);
      if (this.stopped) return;
      for (const item of page.items ?? []) {
        seen.add(this.opts.key(item));
        this.opts.handler.upsert(item);
      }
      rv = page.metadata?.resourceVersion ?? rv;
      token = page.metadata?._continue || page.metadata?.continue || undefined;
    } while (token);
    this.opts.handler.prune(seen);
    this.resourceVersion = rv;
    this.lists += 1;
  }

  private async run(): Promise<void> {
    let needList = false;
    while (!this.stopped) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
        }
        if (this.stopped) return;
        const end = await this.watchOnce();
        if (this.stopped) return;
        if (end.kind === 'gone') {
          this.opts.logger?.info({ path: this.opts.path }, 'watch expired (410); re-listing');
          needList = true;
          this.failures = 0;
          continue;
        }
        if (end.kind === 'ended') {
          // A server-side timeout or a proxy closing the stream: carry on from the last resourceVersion.
          // A stream that ends at once without events counts as a failure, so it cannot spin.
          if (end.events > 0) {
            this.failures = 0;
            continue;
          }
          throw new Error('watch stream ended without events');
        }
        throw end.err;
      } catch (err) {
        if (this.stopped) return;
        this.failures += 1;
        needList = true;
        const delay = backoffDelay(this.failures - 1, {
          baseMs: this.opts.backoffMs ?? 1000,
          capMs: this.opts.maxBackoffMs ?? 30_000,
        });
        const hint = hintFor(err);
        this.opts.logger?.warn(
          { err: String(err), path: this.opts.path, retryInMs: delay, ...(hint ? { hint } : {}) },
          'watch failed; re-listing',
        );
        await this.sleep(delay);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
    });
  }

  private watchOnce(): Promise<WatchEnd> {
    return new Promise<WatchEnd>((resolve) => {
      let events = 0;
      let result: WatchEnd | undefined;
      const timeout = this.opts.watchTimeoutSeconds ?? 240 + Math.floor(Math.random() * 120);
      const query: Record<string, string | boolean | number> = {
        allowWatchBookmarks: true,
        timeoutSeconds: timeout,
      };
      if (this.opts.labelSelector) query.labelSelector = this.opts.labelSelector;
      if (this.resourceVersion) query.resourceVersion = this.resourceVersion;
      const onEvent = (type: string, obj: unknown): void => {
        if (result || this.stopped) return;
        events += 1;
        if (type === 'ERROR') {
          const status = obj as { code?: number; reason?: string; message?: string } | undefined;
          result =
            status?.code === 410 || status?.reason === 'Expired' || status?.reason === 'Gone'
              ? { kind: 'gone' }
              : { kind: 'failed', err: new Error(`watch error: ${status?.message ?? 'unknown'}`) };
          this.abort?.abort();
          return;
        }
        const o = obj as T | undefined;
        if (!o || typeof o !== 'object') return;
        const rv = o.metadata?.resourceVersion;
        if (rv) this.resourceVersion = rv;
        try {
          if (type === 'ADDED' || type === 'MODIFIED') this.opts.handler.upsert(o);
          else if (type === 'DELETED') this.opts.handler.remove(o);
          // BOOKMARK only moves the resourceVersion.
        } catch (err) {
          this.opts.logger?.error({ err, path: this.opts.path, type }, 'watch event handler failed');
        }
      };
      const onDone = (err: unknown): void => {
        const code = (err as { statusCode?: number } | null)?.statusCode;
        if (result) resolve(result);
        else if (code === 410) resolve({ kind: 'gone' });
        else resolve(err ? { kind: 'failed', err } : { kind: 'ended', events });
      };
      new Watch(this.kc)
        .watch(this.opts.path, query, onEvent, onDone)
        .then((controller) => {
          this.abort = controller;
          if (this.stopped) controller.abort();
        })
        .catch((err: unknown) => resolve({ kind: 'failed', err }));
    });
  }
}

/**
 * What to do about a failure that retrying alone will not fix: a refused token or a missing RBAC grant. The
 * watcher keeps retrying (a rotated token or a fixed Role heals it), but the log says why it is blind.
 */
export function hintFor(err: unknown): string | undefined {
  const e = err as { code?: unknown; statusCode?: unknown } | null;
  const status =
    typeof e?.code === 'number' ? e.code : typeof e?.statusCode === 'number' ? e.statusCode : undefined;
  if (status === 401)
    return "the API server refused gpu-medic's credentials (401 Unauthorized): check the ServiceAccount token or the kubeconfig";
  if (status === 403)
    return "gpu-medic's RBAC does not allow this list/watch (403 Forbidden): check the ClusterRole";
  return undefined;
}

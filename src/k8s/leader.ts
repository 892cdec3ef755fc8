/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go does it (client-node 1.4 has no helper):
 * read → create when absent → renew while we hold it → take over once the holder's lease has run out, every
 * write guarded by resourceVersion so that two candidates never both win (409 = lost the race).
 */
import { CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../domain/clock.js';
import { isTransientK8sError, k8sErrorDetail, k8sStatusOf } from './cluster-port.js';

export interface LeaderElectorOptions {
  kc: KubeConfig;
  namespace: string;
  leaseName: string;
  /** Unique per process (pod name + a random suffix): two processes with one identity would both lead. */
  identity: string;
  leaseDurationMs?: number;
  renewEveryMs?: number;
  retryEveryMs?: number;
  clock?: Pick<Clock, 'now'>;
  logger?: Logger;
}

export type LeaderListener = (leader: boolean) => void;

/**
 * Lease times are MicroTime: RFC 3339 with six fractional digits. client-node passes the field through
 * untouched (it is typed as a Date but arrives as a string), so we send the exact string the API server expects.
 */
export function microTime(ms: number): Date {
  const iso = new Date(ms).toISOString(); // 2025-01-01T00:00:00.123Z
  return `${iso.slice(0, -1)}000Z` as unknown as Date;
}

/** A Lease time as it arrives at run time (string) or as typed (Date) → epoch ms; undefined when unreadable. */
export function leaseTimeMs(value: unknown): number | undefined {
  if (value instanceof Date) return Number.isFinite(value.getTime()) ? value.getTime() : undefined;
  if (typeof value === 'string' && value !== '') {
    const t = Date.parse(value);
    return Number.isFinite(t) ? t : undefined;
  }
  return undefined;
}

export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private readonly namespace: string;
  private readonly leaseName: string;
  readonly identity: string;
  private readonly leaseDurationMs: number;
  private readonly renewEveryMs: number;
  private readonly retryEveryMs: number;
  private readonly clock: Pick<Clock, 'now'>;
  private readonly log: Logger | undefined;
  private readonly listeners = new Set<LeaderListener>();

  private leading = false;
  /** What listeners were last told. */
  private notified = false;
  /** Local time just before the request of the last successful create / renew / takeover. */
  private lastRenewOk = Number.NEGATIVE_INFINITY;
  /** The holder's record as last seen, and when (our clock) it last changed: protects against clock skew. */
  private observed: { key: string; at: number } | undefined;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;

  constructor(opts: LeaderElectorOptions) {
    if (!opts.identity) throw new Error('leader election needs a non-empty identity');
    this.api = opts.kc.makeApiClient(CoordinationV1Api);
    this.namespace = opts.namespace;
    this.leaseName = opts.leaseName;
    this.identity = opts.identity;
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewEveryMs = opts.renewEveryMs ?? 5_000;
    this.retryEveryMs = opts.retryEveryMs ?? 2_000;
    if (this.renewEveryMs >= this.leaseDurationMs)
      throw new Error(
        `renewEveryMs (${this.renewEveryMs}) must be shorter than leaseDurationMs (${this.leaseDurationMs})`,
      );
    this.clock = opts.clock ?? systemClock;
    this.log = opts.logger?.child({ lease: `${opts.namespace}/${opts.leaseName}`, identity: opts.identity });
  }

  /** True only while our last successful renew is younger than the lease: never act on a stale lease. */
  isLeader(): boolean {
    return this.leading && this.lastRenewOk + this.leaseDurationMs > this.clock.now();
  }

  /** Called with the new value whenever isLeader() changes; returns the unsubscribe function. */
  onChange(fn: LeaderListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Starts campaigning; resolves after the first attempt (isLeader() tells its outcome). */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.tryAcquireOrRenew();
    this.loop = this.run();
  }

  /** Stops campaigning and, if we hold the lease, releases it so a successor takes over at once. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearTimeout(this.timer);
    this.wake?.();
    await this.loop;
    const held = this.leading;
    this.setLeading(false);
    clearTimeout(this.expiryTimer);
    if (held) await this.release();
  }

  /** One round: read the lease, then create, renew or take it over. True when we hold it afterwards. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.clock.now();
    let lease: V1Lease | undefined;
    try {
      lease = await this.api.readNamespacedLease({ name: this.leaseName, namespace: this.namespace });
    } catch (e) {
      if (k8sStatusOf(e) !== 404) return this.failed('read', e);
    }
    if (!lease) return this.create(now);

    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    if (holder === this.identity) return this.write(lease, now, false);

    const key = `${holder}|${leaseTimeMs(spec.renewTime) ?? ''}|${lease.metadata?.resourceVersion ?? ''}`;
    if (this.observed?.key !== key) this.observed = { key, at: now };
    const durationMs = spec.leaseDurationSeconds ? spec.leaseDurationSeconds * 1000 : this.leaseDurationMs;
    // Expired only by both clocks: the holder's renewTime and the moment we saw the record last change.
    const lastSign = Math.max(this.observed.at, leaseTimeMs(spec.renewTime) ?? Number.NEGATIVE_INFINITY);
    if (holder !== '' && lastSign + durationMs > now) {
      this.setLeading(false);
      return false;
    }
    return this.write(lease, now, true);
  }

  private async run(): Promise<void> {
    while (this.running) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.timer = setTimeout(resolve, this.leading ? this.renewEveryMs : this.retryEveryMs);
      });
      if (!this.running) return;
      await this.tryAcquireOrRenew();
    }
  }

  private leaseBody(now: number): NonNullable<V1Lease['spec']> {
    return {
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.max(1, Math.ceil(this.leaseDurationMs / 1000)),
      acquireTime: microTime(now),
      renewTime: microTime(now),
    };
  }

  private async create(now: number): Promise<boolean> {
    try {
      await this.api.createNamespacedLease({
        namespace: this.namespace,
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.leaseName, namespace: this.namespace },
          spec: { ...this.leaseBody(now), leaseTransitions: 0 },
        },
      });
    } catch (e) {
      if (k8sStatusOf(e) === 409) return this.lostRace('create');
      return this.failed('create', e);
    }
    return this.won(now, 'lease created');
  }

  /** Renew (ours) or take over (expired or released) with the resourceVersion we read. */
  private async write(lease: V1Lease, now: number, takeover: boolean): Promise<boolean> {
    const spec = lease.spec ?? {};
    const body: V1Lease = {
      ...lease,
      spec: takeover
        ? { ...spec, ...this.leaseBody(now), leaseTransitions: (spec.leaseTransitions ?? 0) + 1 }
        : {
            ...spec,
            renewTime: microTime(now),
            leaseDurationSeconds: this.leaseBody(now).leaseDurationSeconds,
          },
    };
    try {
      await this.api.replaceNamespacedLease({ name: this.leaseName, namespace: this.namespace, body });
    } catch (e) {
      if (k8sStatusOf(e) === 409) return this.lostRace(takeover ? 'takeover' : 'renew');
      return this.failed(takeover ? 'takeover' : 'renew', e);
    }
    if (takeover) this.log?.info({ previous: spec.holderIdentity ?? '' }, 'lease taken over');
    return this.won(now, takeover ? 'lease acquired' : undefined);
  }

  private won(at: number, message: string | undefined): boolean {
    this.lastRenewOk = at;
    if (message) this.log?.info({}, message);
    this.setLeading(true);
    // Without a renew the lease runs out: tell listeners then, even if a request hangs meanwhile.
    clearTimeout(this.expiryTimer);
    this.expiryTimer = setTimeout(() => this.setLeading(this.isLeader()), this.leaseDurationMs + 1);
    this.expiryTimer.unref();
    return true;
  }

  private lostRace(step: string): boolean {
    this.log?.info({ step }, 'lost the lease race');
    this.setLeading(false);
    return false;
  }

  /**
   * A renew that failed for a passing reason (a 5xx, a 429, no answer) leaves us the leader until our lease
   * runs out, as client-go's renew deadline does: nobody else can take the lease before then, and stepping
   * down at once would abort a drain for one dropped request. Any other failure ends the leadership now.
   */
  private failed(step: string, error: unknown): boolean {
    const transient = isTransientK8sError(error);
    const keep = transient && this.leading && this.isLeader();
    this.log?.warn(
      { step, status: k8sStatusOf(error), err: k8sErrorDetail(error).message, stillLeading: keep },
      keep ? 'lease renew failed; leading until the lease runs out' : 'lease request failed',
    );
    if (keep) return true;
    this.setLeading(false);
    return false;
  }

  private setLeading(value: boolean): void {
    this.leading = value;
    const after = this.isLeader();
    if (after === this.notified) return;
    this.notified = after;
    this.log?.info({ leader: after }, after ? 'became leader' : 'stopped being leader');
    for (const fn of this.listeners) {
      try {
        fn(after);
      } catch (err) {
        this.log?.error({ err }, 'leader listener failed');
      }
    }
  }

  private async release(): Promise<void> {
    try {
      const lease = await this.api.readNamespacedLease({ name: this.leaseName, namespace: this.namespace });
      if (lease.spec?.holderIdentity !== this.identity) return;
      const { renewTime: _r, acquireTime: _a, ...rest } = lease.spec;
      await this.api.replaceNamespacedLease({
        name: this.leaseName,
        namespace: this.namespace,
        body: { ...lease, spec: { ...rest, holderIdentity: '' } },
      });
      this.log?.info({}, 'lease released');
    } catch (e) {
      this.log?.warn({ status: k8sStatusOf(e), err: k8sErrorDetail(e).message }, 'lease release failed');
    }
  }
}

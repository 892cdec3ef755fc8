/**
 * The brakes on automatic remediation, kept in the KV store: the circuit breaker (opened by gpu-medic when
 * too many GPU nodes look broken at once), a human's pause, and the start times behind the hourly rate
 * limit. Records are read through zod schemas: a record that does not parse fails safe (an unreadable
 * breaker counts as open; unreadable start times as none, the breaker still stands).
 */
import { z } from 'zod';
import type { DetailsOf } from '../domain/events.js';
import { isWorking, type RemediationAction } from '../domain/incident.js';
import { OptOutLabel } from '../domain/node.js';
import type { BreakerState, ServiceResult } from '../domain/service-result.js';
import { breakerNodes, type SafetyLimit, shouldTripBreaker } from './safety.js';
import type { ServiceKit } from './service-kit.js';

const BreakerStateSchema: z.ZodType<BreakerState> = z.object({
  open: z.boolean(),
  reason: z.string().optional(),
  by: z.string().optional(),
  at: z.number().optional(),
});

const StartsSchema = z.array(z.number());

const Keys = {
  breaker: 'remediate.breaker',
  paused: 'remediate.paused',
  starts: 'remediate.starts',
} as const;
const hourMs = 3_600_000;

export class Brakes {
  constructor(private readonly kit: ServiceKit) {}

  breaker(): BreakerState {
    return this.read(Keys.breaker);
  }

  paused(): BreakerState {
    return this.read(Keys.paused);
  }

  /** Stops automatic remediation (manual actions still run) until `resume`. */
  pause(actor: string, reason = 'paused'): Promise<ServiceResult> {
    return this.kit.guarded(actor, 'pause', { reason }, () => {
      this.write(Keys.paused, { open: true, reason, by: actor, at: this.kit.deps.clock.now() });
      return { ok: true, outcome: { kind: 'paused', by: actor } };
    });
  }

  /** Closes the circuit breaker and lifts a pause. */
  resume(actor: string): Promise<ServiceResult> {
    return this.kit.guarded(actor, 'resume', {}, () => {
      const wasPaused = this.breaker().open || this.paused().open;
      this.kit.deps.kv.delete(Keys.breaker);
      this.kit.deps.kv.delete(Keys.paused);
      return { ok: true, outcome: { kind: 'resumed', by: actor, wasPaused } };
    });
  }

  /** Opens the breaker when the share of unhealthy GPU nodes crossed the limit (an automatic start only). */
  tripIfNeeded(now: number, gpuNodeCount: number): void {
    if (this.breaker().open) return;
    const { safety, deps, log } = this.kit;
    const unhealthy = this.unhealthyNodes(now);
    const trip = shouldTripBreaker({
      unhealthyOrCordonedByUs: unhealthy,
      gpuNodeCount,
      maxUnhealthyPercent: safety.maxUnhealthyPercent,
      ...(safety.maxUnhealthyNodes !== undefined ? { maxUnhealthyNodes: safety.maxUnhealthyNodes } : {}),
    });
    if (!trip.trip) return;
    this.write(Keys.breaker, { open: true, reason: trip.message, by: 'gpu-medic', at: now });
    deps.audit.append({
      at: now,
      actor: 'gpu-medic',
      action: 'breaker.open',
      result: 'open',
      reason: trip.message,
    });
    log?.warn({ unhealthy, gpuNodeCount }, 'circuit breaker opened');
  }

  /** Start times within the last hour (dry runs are not recorded). */
  recentStarts(now: number): number[] {
    const raw = this.kit.deps.kv.get(Keys.starts);
    const parsed = raw ? StartsSchema.safeParse(parseJson(raw)) : undefined;
    return (parsed?.success ? parsed.data : []).filter((t) => now - t < hourMs);
  }

  recordStart(now: number): void {
    this.kit.deps.kv.set(Keys.starts, JSON.stringify([...this.recentStarts(now), now]));
  }

  /** Distinct GPU nodes with a recent critical open incident or a remediation in flight (node problems aside). */
  unhealthyNodes(now: number): number {
    const open = this.kit.deps.incidents.list({ open: true });
    return breakerNodes(open, now - this.kit.safety.breakerWindowMs).size;
  }

  /** The numbers behind a safety limit, so the thread can say which limit and by how much. */
  limitDetails(
    limit: SafetyLimit,
    action: RemediationAction,
    message: string,
    now: number,
    gpuNodeCount: number,
  ): DetailsOf<'safety_limit'> {
    const { safety, deps } = this.kit;
    const base = { action, message };
    switch (limit) {
      case 'breaker': {
        // checkSafety folds a human's pause into the breaker; the thread tells them apart.
        if (this.paused().open && !this.breaker().open) return { limit: 'paused', ...base };
        return {
          limit: 'circuit_breaker',
          ...base,
          unhealthy: this.unhealthyNodes(now),
          total: gpuNodeCount,
          thresholdPct: safety.maxUnhealthyPercent,
          ...(safety.maxUnhealthyNodes !== undefined ? { maxNodes: safety.maxUnhealthyNodes } : {}),
        };
      }
      case 'rate':
        return {
          limit: 'rate_limit',
          ...base,
          count: this.recentStarts(now).length,
          perHour: safety.perHour,
          windowMinutes: 60,
        };
      case 'concurrency':
        return {
          limit: 'max_concurrent',
          ...base,
          inFlight: deps.incidents.list({ open: true }).filter((i) => isWorking(i.state)).length,
          maxConcurrent: safety.maxConcurrent,
        };
      case 'opt_out':
        return { limit: 'opt_out', ...base, label: `${OptOutLabel}=true` };
      case 'excluded':
        return base;
    }
  }

  private read(key: string): BreakerState {
    const raw = this.kit.deps.kv.get(key);
    if (!raw) return { open: false };
    const parsed = BreakerStateSchema.safeParse(parseJson(raw));
    // An unreadable breaker record fails safe: treated as open.
    return parsed.success ? parsed.data : { open: true, reason: 'unreadable breaker state' };
  }

  private write(key: string, state: BreakerState): void {
    this.kit.deps.kv.set(key, JSON.stringify(BreakerStateSchema.parse(state)));
  }
}

function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

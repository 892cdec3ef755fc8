/**
 * The hybrid classifier's events as Prometheus metrics. Typed structurally so that classify/ does not
 * depend on prom-client: src/metrics/metrics.ts's `Metrics` fits, and so does any test double.
 */
import type { LlmEvent } from './hybrid.js';

export interface LlmMetricSinks {
  /** `gpu_medic_llm_calls_total{outcome}`: ok, invalid, timeout, throttled, error. */
  llmCalls: { inc(labels: { outcome: string }): void };
  /** `gpu_medic_llm_cache_hits_total`: answers served without a model call. */
  llmCacheHits: { inc(): void };
  /** Optional: the rules' verdict stood, by reason (rejected, timeout, throttled, error, budget, no_client). */
  llmFallbacks?: { inc(labels: { reason: string }): void };
  /** Optional: model latency, in seconds. */
  llmLatency?: { observe(seconds: number): void };
  /** Optional: tokens by direction (input, output). */
  llmTokens?: { inc(labels: { direction: string }, value: number): void };
  /** Optional: `gpu_medic_llm_model_unavailable`, 1 once the service refused the model for good. */
  llmModelUnavailable?: { set(value: number): void };
}

export function llmMetricsHook(metrics: LlmMetricSinks): (event: LlmEvent) => void {
  return (event) => {
    if (event.type === 'cache_hit') {
      metrics.llmCacheHits.inc();
      return;
    }
    if (event.type === 'model_unavailable') {
      metrics.llmModelUnavailable?.set(1);
      return;
    }
    if (event.type === 'fallback') {
      metrics.llmFallbacks?.inc({ reason: event.reason });
      return;
    }
    metrics.llmCalls.inc({ outcome: event.outcome });
    if (event.latencyMs !== undefined) metrics.llmLatency?.observe(event.latencyMs / 1000);
    if (event.inputTokens) metrics.llmTokens?.inc({ direction: 'input' }, event.inputTokens);
    if (event.outputTokens) metrics.llmTokens?.inc({ direction: 'output' }, event.outputTokens);
  };
}

/** Plain counters of the LLM path, read by `/gpu status`, /metrics and the benchmark. */

export interface LlmStats {
  /** Requests sent to the model (one per signature per TTL, ideally). */
  calls: number;
  /** Answers served from the signature cache, including cached rejections. */
  cacheHits: number;
  /** Requests that waited on an identical in-flight call instead of making their own. */
  coalesced: number;
  /** Model answers accepted. */
  accepted: number;
  /** Model answers rejected by validation, by reason. */
  rejections: Record<string, number>;
  /** Times the rules' verdict stood because the LLM path could not give one, by reason. */
  fallbacks: Record<string, number>;
  timeouts: number;
  throttles: number;
  errors: number;
  latencyMsSum: number;
  latencyCount: number;
  inputTokens: number;
  outputTokens: number;
  /** Set once when the service refuses the model for good (invalid or retired id); no call is made after. */
  modelUnavailable?: { modelId: string; reason: string; since: number };
}

export function createLlmStats(): LlmStats {
  return {
    calls: 0,
    cacheHits: 0,
    coalesced: 0,
    accepted: 0,
    rejections: {},
    fallbacks: {},
    timeouts: 0,
    throttles: 0,
    errors: 0,
    latencyMsSum: 0,
    latencyCount: 0,
    inputTokens: 0,
    outputTokens: 0,
  };
}

export function bump(counter: Record<string, number>, key: string): void {
  counter[key] = (counter[key] ?? 0) + 1;
}

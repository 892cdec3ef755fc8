import { describe, expect, it } from 'vitest';
import { fakeRules, gpus, ScriptedLlm, snapshot, toolAnswer } from '../../../test/support/llm.js';
import { defaultClassificationPolicy } from '../../domain/policy.js';
import { createMetrics } from '../../metrics/metrics.js';
import { createHybridClassifier, type LlmEvent } from './hybrid.js';
import { MemorySignatureCache } from './memory-cache.js';
import { llmMetricsHook } from './metrics-hook.js';
import { LlmTimeoutError } from './port.js';

const policy = defaultClassificationPolicy;

const unknownXid = (node: string) =>
  snapshot(node, { gpus: gpus(8, (g) => (g === 2 ? { xidLast: 157 } : {})) });
const answer = (category: string, xid: number | null) =>
  toolAnswer({ category, severity: 'critical', gpu: null, xid, confidence: 0.9, explanation: 'x' });

async function metricValue(metrics: ReturnType<typeof createMetrics>, name: string): Promise<string[]> {
  const text = await metrics.registry.metrics();
  return text.split('\n').filter((l) => l.startsWith(name));
}

describe('llm observability', () => {
  it('reports every call, cache hit and fallback to the hook', async () => {
    const events: LlmEvent[] = [];
    let n = 0;
    const llm = new ScriptedLlm(() => {
      n++;
      if (n === 1) return answer('XID_CRITICAL_157', 157);
      if (n === 2) return answer('COSMIC_RAYS', null);
      throw new LlmTimeoutError('late');
    });
    const classifier = createHybridClassifier({
      mode: 'hybrid',
      rules: fakeRules,
      llm,
      cache: new MemorySignatureCache(),
      policy,
      onEvent: (e) => events.push(e),
    });
    await classifier.classify(unknownXid('a')); // call ok
    await classifier.classify(unknownXid('b')); // cache hit
    await classifier.classify(snapshot('c', { unparsed: ['odd text'] })); // call rejected → fallback
    await classifier.classify(snapshot('d', { unparsed: ['other text'] })); // timeout → fallback
    expect(events).toEqual([
      { type: 'call', outcome: 'ok', latencyMs: 5, inputTokens: 900, outputTokens: 60 },
      { type: 'cache_hit', coalesced: false },
      {
        type: 'call',
        outcome: 'invalid',
        latencyMs: 5,
        inputTokens: 900,
        outputTokens: 60,
        rejection: 'unknown_category',
      },
      { type: 'fallback', reason: 'rejected' },
      { type: 'call', outcome: 'timeout' },
      { type: 'fallback', reason: 'timeout' },
    ]);
  });

  it('a hook that throws changes no verdict', async () => {
    const llm = new ScriptedLlm(() => answer('XID_CRITICAL_157', 157));
    const classifier = createHybridClassifier({
      mode: 'hybrid',
      rules: fakeRules,
      llm,
      cache: new MemorySignatureCache(),
      policy,
      onEvent: () => {
        throw new Error('metrics broke');
      },
    });
    expect(await classifier.classify(unknownXid('a'))).toMatchObject({
      category: 'XID_CRITICAL_157',
      source: 'llm',
    });
  });

  it('feeds the Prometheus counters of src/metrics/metrics.ts', async () => {
    const metrics = createMetrics(undefined, { defaultMetrics: false });
    const hook = llmMetricsHook(metrics);
    hook({ type: 'call', outcome: 'ok', latencyMs: 1200, inputTokens: 900, outputTokens: 60 });
    hook({ type: 'call', outcome: 'invalid', rejection: 'schema' });
    hook({ type: 'call', outcome: 'throttled' });
    hook({ type: 'cache_hit', coalesced: false });
    hook({ type: 'cache_hit', coalesced: true });
    hook({ type: 'fallback', reason: 'budget' });
    expect(await metricValue(metrics, 'gpu_medic_llm_calls_total{')).toEqual(
      expect.arrayContaining([
        'gpu_medic_llm_calls_total{outcome="ok"} 1',
        'gpu_medic_llm_calls_total{outcome="invalid"} 1',
        'gpu_medic_llm_calls_total{outcome="throttled"} 1',
        'gpu_medic_llm_calls_total{outcome="timeout"} 0',
      ]),
    );
    expect(await metricValue(metrics, 'gpu_medic_llm_cache_hits_total ')).toEqual([
      'gpu_medic_llm_cache_hits_total 2',
    ]);
  });

  it('feeds the optional fallback, latency and token metrics when given', () => {
    const seen: string[] = [];
    const hook = llmMetricsHook({
      llmCalls: { inc: (l) => seen.push(`call ${l.outcome}`) },
      llmCacheHits: { inc: () => seen.push('hit') },
      llmFallbacks: { inc: (l) => seen.push(`fallback ${l.reason}`) },
      llmLatency: { observe: (s) => seen.push(`latency ${s}`) },
      llmTokens: { inc: (l, v) => seen.push(`tokens ${l.direction} ${v}`) },
    });
    hook({ type: 'call', outcome: 'ok', latencyMs: 1200, inputTokens: 900, outputTokens: 60 });
    hook({ type: 'fallback', reason: 'budget' });
    expect(seen).toEqual([
      'call ok',
      'latency 1.2',
      'tokens input 900',
      'tokens output 60',
      'fallback budget',
    ]);
  });
});

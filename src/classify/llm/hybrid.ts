/**
 * Rules first, the model only for what they cannot settle: once per fault signature per TTL, coalesced,
 * within an hourly budget, validated — and whenever anything goes wrong, the rules' verdict stands.
 * The model names a category; the taxonomy and the operator's policy give severity and action.
 */
import type { Logger } from 'pino';
import { type Finding, isNodeProblem, type Verdict, verdictOf } from '../../domain/finding.js';
import type { NodeSnapshot } from '../../domain/gpu.js';
import type { ClassificationPolicy } from '../../domain/policy.js';
import type { CachedClassification, SignatureCache } from '../../domain/ports.js';
import { evidenceXids, gpuIndices } from './evidence.js';
import { type LlmClient, LlmModelUnavailableError, LlmThrottledError, LlmTimeoutError } from './port.js';
import { buildPrompt } from './prompt.js';
import { signatureOf } from './signature.js';
import { bump, createLlmStats, type LlmStats } from './stats.js';
import { type ValidatedAnswer, type ValidationContext, validateAnswer } from './validate.js';

export const ClassifierModes = ['rules', 'hybrid', 'llm'] as const;
export type ClassifierMode = (typeof ClassifierModes)[number];

export const FallbackReasons = [
  'rejected',
  'timeout',
  'throttled',
  'error',
  'budget',
  'no_client',
  'model_unavailable',
] as const;
export type FallbackReason = (typeof FallbackReasons)[number];

export interface HybridClassifierOptions {
  mode: ClassifierMode;
  rules: (snapshot: NodeSnapshot) => Verdict;
  llm: LlmClient | undefined;
  cache: SignatureCache;
  policy: ClassificationPolicy;
  /** LLM_CACHE_TTL; default 24 h. Rejections are cached for as long; timeouts and throttles are not. */
  ttlMs?: number;
  /** LLM_MAX_CALLS_PER_HOUR over a sliding hour; default 60. */
  maxCallsPerHour?: number;
  minConfidence?: number;
  logBudgetChars?: number;
  /**
   * A backstop in case an LlmClient ignores its own timeout; the Bedrock adapter enforces LLM_TIMEOUT
   * itself, so this only has to be longer. Default 60 s.
   */
  guardTimeoutMs?: number;
  clock?: () => number;
  logger?: Logger;
  stats?: LlmStats;
  /**
   * Observability hook (Prometheus, the benchmark): one event per model call, cache hit and fallback.
   * A hook that throws is logged and ignored: metrics never change a verdict.
   */
  onEvent?: (event: LlmEvent) => void;
}

/** Outcome of one model call: `invalid` = answered but rejected by validation. */
export const LlmCallOutcomes = ['ok', 'invalid', 'timeout', 'throttled', 'error'] as const;
export type LlmCallOutcome = (typeof LlmCallOutcomes)[number];

export type LlmEvent =
  | {
      type: 'call';
      outcome: LlmCallOutcome;
      /** Present when the model answered (ok / invalid). */
      latencyMs?: number;
      inputTokens?: number;
      outputTokens?: number;
      /** The validation failure, for `invalid`. */
      rejection?: string;
    }
  /** Served without a call: from the signature cache, or by waiting on an identical call in flight. */
  | { type: 'cache_hit'; coalesced: boolean }
  /** The rules' verdict stood. */
  | { type: 'fallback'; reason: FallbackReason }
  /** The service refused the model for good (invalid or retired id): sent once, no call follows. */
  | { type: 'model_unavailable'; modelId: string; reason: string };

/** What the LLM path did for one node, for the audit trail. */
export type LlmOutcome =
  | { kind: 'skipped' }
  | { kind: 'answered'; source: 'llm' | 'cache'; signature: string; category: string; confidence: number }
  | { kind: 'fallback'; reason: FallbackReason; signature?: string; detail: string };

export interface Classification {
  verdict: Verdict;
  llm: LlmOutcome;
}

export interface HybridClassifier {
  /** Never rejects because of the model: any model failure returns the rules' verdict. */
  classify(snapshot: NodeSnapshot): Promise<Verdict>;
  classifyDetailed(snapshot: NodeSnapshot): Promise<Classification>;
  readonly stats: LlmStats;
}

type Resolution =
  | { kind: 'answer'; cached: CachedClassification; answer: ValidatedAnswer }
  | { kind: 'fallback'; reason: FallbackReason; detail: string };

const hourMs = 3_600_000;

/** Does this node need the model, given the mode? Pure, exported for the monitor's and the CLI's use. */
export function needsLlm(
  mode: ClassifierMode,
  snapshot: NodeSnapshot,
  verdict: Verdict,
  policy: ClassificationPolicy,
): boolean {
  if (mode === 'rules') return false;
  const ambiguous = verdict.findings.some((f) => f.ambiguous);
  const customText = policy.categories.length > 0 && (snapshot.unparsed?.length ?? 0) > 0;
  if (ambiguous || customText) return true;
  // Nothing to read in a collection failure (the model cannot see a node we could not reach), nor in a node
  // problem (a kernel / network / storage condition is no GPU fault for the model to name).
  return (
    mode === 'llm' &&
    verdict.findings.some((f) => f.kind !== 'collection' && !isNodeProblem(f) && f.severity !== 'healthy')
  );
}

/** The rules' findings with the unsettled ones replaced by the model's category. */
export function applyAnswer(
  snapshot: NodeSnapshot,
  verdict: Verdict,
  answer: ValidatedAnswer,
  source: 'llm' | 'cache',
): Verdict {
  const ambiguous = verdict.findings.filter((f) => f.ambiguous);
  const kept = verdict.findings.filter((f) => !f.ambiguous);
  const first = ambiguous[0];
  // A cached answer's GPU came from another node (indices are not in the signature): trust the rules' GPU.
  const gpu = first?.gpu ?? (source === 'llm' ? answer.gpu : undefined);
  const evidence = (
    ambiguous.length > 0 ? ambiguous.flatMap((f) => f.evidence) : (snapshot.unparsed ?? [])
  ).slice(0, 10);
  const key = first?.key ?? `llm:${answer.category.toLowerCase()}${gpu !== undefined ? `:gpu${gpu}` : ''}`;
  const finding: Finding = {
    kind: answer.info.kind,
    category: answer.category,
    severity: answer.info.severity,
    action: answer.info.action,
    evidence,
    explanation: answer.explanation,
    source,
    key,
  };
  if (gpu !== undefined) finding.gpu = gpu;
  if (answer.xid !== undefined) finding.xid = answer.xid;

  let findings: Finding[];
  if (answer.info.severity === 'healthy') {
    findings = kept.length > 0 ? kept : [finding];
  } else {
    const twin = settledTwin(kept, answer.category, gpu, ambiguous.length > 0);
    findings = twin
      ? kept.map((f) => (f === twin ? mergeEvidence(twin, evidence, ambiguous) : f))
      : [...kept, finding];
  }
  return verdictOf(snapshot.node, findings);
}

/**
 * The settled finding the model's answer is about, if the rules already read it. With nothing ambiguous
 * (`--mode llm`) the answer describes the whole node, so the same category is the same fault whatever
 * GPU the answer names: a cached answer carries no GPU, and a GPU-less twin would outrank the rules'
 * finding and lose its GPU. An answer that replaces ambiguous findings is the same fault only on the
 * same GPU (or when it names none).
 */
function settledTwin(
  kept: Finding[],
  category: string,
  gpu: number | undefined,
  replacesAmbiguous: boolean,
): Finding | undefined {
  const same = kept.filter((f) => f.category === category);
  if (!replacesAmbiguous || gpu === undefined) return same[0];
  return same.find((f) => f.gpu === gpu);
}

/** The rules' facts (GPU, XID, key, source) stand; the ambiguous findings it absorbs add their evidence. */
function mergeEvidence(twin: Finding, evidence: string[], absorbed: Finding[]): Finding {
  if (absorbed.length === 0) return twin;
  return { ...twin, evidence: [...new Set([...twin.evidence, ...evidence])].slice(0, 10) };
}

export function createHybridClassifier(options: HybridClassifierOptions): HybridClassifier {
  const { mode, rules, llm, cache, policy, logger } = options;
  const ttlMs = options.ttlMs ?? 24 * hourMs;
  const maxCallsPerHour = options.maxCallsPerHour ?? 60;
  const guardTimeoutMs = options.guardTimeoutMs ?? 60_000;
  const clock = options.clock ?? Date.now;
  const stats = options.stats ?? createLlmStats();
  const inFlight = new Map<string, Promise<Resolution>>();
  const callTimes: number[] = [];

  function emit(event: LlmEvent): void {
    if (!options.onEvent) return;
    try {
      options.onEvent(event);
    } catch (err) {
      logger?.warn({ err, event: event.type }, 'llm observability hook failed');
    }
  }

  function withinBudget(now: number): boolean {
    while (callTimes.length > 0 && (callTimes[0] ?? 0) <= now - hourMs) callTimes.shift();
    return callTimes.length < maxCallsPerHour;
  }

  async function callModel(
    client: LlmClient,
    signature: string,
    snapshot: NodeSnapshot,
    ctx: ValidationContext,
  ): Promise<Resolution> {
    const request = buildPrompt(snapshot, ctx.rulesVerdict, policy, {
      logBudgetChars: options.logBudgetChars,
    });
    stats.calls++;
    let timer: NodeJS.Timeout | undefined;
    try {
      const guard = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new LlmTimeoutError('model call exceeded the guard timeout')),
          guardTimeoutMs,
        );
      });
      const response = await Promise.race([client.classify(request), guard]);
      stats.latencyMsSum += response.latencyMs;
      stats.latencyCount++;
      stats.inputTokens += response.usage.inputTokens;
      stats.outputTokens += response.usage.outputTokens;
      const answered = {
        latencyMs: response.latencyMs,
        inputTokens: response.usage.inputTokens,
        outputTokens: response.usage.outputTokens,
      };

      const result = validateAnswer(response.input, ctx);
      const expiresAt = clock() + ttlMs;
      if (!result.ok) {
        bump(stats.rejections, result.reason);
        emit({ type: 'call', outcome: 'invalid', ...answered, rejection: result.reason });
        logger?.warn(
          { node: snapshot.node, signature, reason: result.reason, detail: result.detail },
          'llm answer rejected',
        );
        cache.put(
          signature,
          {
            category: ctx.rulesVerdict.category,
            severity: ctx.rulesVerdict.severity,
            confidence: 0,
            explanation: result.detail,
            source: 'rules',
            rejected: result.reason,
          },
          expiresAt,
        );
        return { kind: 'fallback', reason: 'rejected', detail: `${result.reason}: ${result.detail}` };
      }
      stats.accepted++;
      emit({ type: 'call', outcome: 'ok', ...answered });
      const a = result.answer;
      const cached: CachedClassification = {
        category: a.category,
        severity: a.info.severity,
        confidence: a.confidence,
        explanation: a.explanation,
        source: 'llm',
      };
      if (a.xid !== undefined) cached.xid = a.xid;
      if (a.gpu !== undefined) cached.gpu = a.gpu;
      cache.put(signature, cached, expiresAt);
      return { kind: 'answer', cached, answer: a };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (err instanceof LlmTimeoutError) {
        stats.timeouts++;
        emit({ type: 'call', outcome: 'timeout' });
        logger?.warn({ node: snapshot.node, signature, err: message }, 'llm call timed out');
        return { kind: 'fallback', reason: 'timeout', detail: message };
      }
      if (err instanceof LlmModelUnavailableError) {
        stats.errors++;
        emit({ type: 'call', outcome: 'error' });
        // Once, however many calls were in flight: the log, the metric and /gpu status say it; later
        // classifications do not call the model again (see classifyDetailed).
        if (!stats.modelUnavailable) {
          stats.modelUnavailable = { modelId: err.modelId, reason: message, since: clock() };
          logger?.error(
            { modelId: err.modelId, err: message },
            'the LLM model is unavailable (invalid or retired): no more model calls, the rules classify alone until BEDROCK_MODEL_ID names an active model',
          );
          emit({ type: 'model_unavailable', modelId: err.modelId, reason: message });
        }
        return { kind: 'fallback', reason: 'model_unavailable', detail: message };
      }
      if (err instanceof LlmThrottledError) {
        stats.throttles++;
        emit({ type: 'call', outcome: 'throttled' });
        logger?.warn({ node: snapshot.node, signature, err: message }, 'llm call throttled');
        return { kind: 'fallback', reason: 'throttled', detail: message };
      }
      stats.errors++;
      emit({ type: 'call', outcome: 'error' });
      logger?.warn({ node: snapshot.node, signature, err: message }, 'llm call failed');
      return { kind: 'fallback', reason: 'error', detail: message };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Re-checks a shared answer against this node's own facts (same signature, but a different node). */
  function fromCached(cached: CachedClassification, ctx: ValidationContext): Resolution {
    if (cached.rejected)
      return { kind: 'fallback', reason: 'rejected', detail: `${cached.rejected} (cached)` };
    const result = validateAnswer(
      {
        category: cached.category,
        severity: cached.severity,
        xid: cached.xid ?? null,
        confidence: cached.confidence,
        explanation: cached.explanation,
      },
      ctx,
    );
    if (!result.ok)
      return { kind: 'fallback', reason: 'rejected', detail: `${result.reason}: ${result.detail}` };
    return { kind: 'answer', cached, answer: result.answer };
  }

  function fallback(
    verdict: Verdict,
    reason: FallbackReason,
    detail: string,
    signature: string | undefined,
  ): Classification {
    bump(stats.fallbacks, reason);
    emit({ type: 'fallback', reason });
    const llmOutcome: LlmOutcome = { kind: 'fallback', reason, detail };
    if (signature) llmOutcome.signature = signature;
    return { verdict, llm: llmOutcome };
  }

  function finish(
    snapshot: NodeSnapshot,
    verdict: Verdict,
    resolution: Resolution,
    source: 'llm' | 'cache',
    signature: string,
  ): Classification {
    if (resolution.kind === 'fallback')
      return fallback(verdict, resolution.reason, resolution.detail, signature);
    const { answer } = resolution;
    return {
      verdict: applyAnswer(snapshot, verdict, answer, source),
      llm: { kind: 'answered', source, signature, category: answer.category, confidence: answer.confidence },
    };
  }

  async function classifyDetailed(snapshot: NodeSnapshot): Promise<Classification> {
    const verdict = rules(snapshot);
    if (!needsLlm(mode, snapshot, verdict, policy)) return { verdict, llm: { kind: 'skipped' } };

    const signature = signatureOf(snapshot, verdict, policy, mode);
    const ctx: ValidationContext = {
      policy,
      evidenceXids: evidenceXids(snapshot, verdict),
      gpuIndices: gpuIndices(snapshot),
      rulesVerdict: verdict,
      minConfidence: options.minConfidence,
    };

    const cached = cache.get(signature, clock());
    if (cached) {
      stats.cacheHits++;
      emit({ type: 'cache_hit', coalesced: false });
      return finish(snapshot, verdict, fromCached(cached, ctx), 'cache', signature);
    }

    const pending = inFlight.get(signature);
    if (pending) {
      stats.coalesced++;
      emit({ type: 'cache_hit', coalesced: true });
      const shared = await pending;
      const own = shared.kind === 'answer' ? fromCached(shared.cached, ctx) : shared;
      return finish(snapshot, verdict, own, 'cache', signature);
    }

    if (!llm) return fallback(verdict, 'no_client', 'no model client configured', signature);
    const unavailable = stats.modelUnavailable;
    if (unavailable) {
      return fallback(
        verdict,
        'model_unavailable',
        `model ${unavailable.modelId} is unavailable: ${unavailable.reason}`,
        signature,
      );
    }
    const now = clock();
    if (!withinBudget(now)) {
      logger?.warn({ node: snapshot.node, maxCallsPerHour }, 'llm hourly budget spent, rules verdict stands');
      return fallback(
        verdict,
        'budget',
        `more than ${maxCallsPerHour} model calls in the last hour`,
        signature,
      );
    }
    callTimes.push(now);

    const call = callModel(llm, signature, snapshot, ctx);
    inFlight.set(signature, call);
    try {
      return finish(snapshot, verdict, await call, 'llm', signature);
    } finally {
      inFlight.delete(signature);
    }
  }

  return {
    classifyDetailed,
    classify: async (snapshot) => (await classifyDetailed(snapshot)).verdict,
    stats,
  };
}

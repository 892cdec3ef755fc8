/**
 * The classifier evaluation: every dump of the labelled corpus goes through the same pipeline the monitor
 * uses (parse → rules → hybrid/LLM with the signature cache), and its verdict is compared with the label.
 * Items run one after another so that repeated faults are served by the cache, as they would be in a fleet.
 */
import type { Logger } from 'pino';
import { loadDcgmFrCatalog, loadXidCatalog } from '../classify/catalog.js';
import {
  type ClassifierMode,
  createHybridClassifier,
  type LlmOutcome,
  needsLlm,
} from '../classify/llm/hybrid.js';
import { MemorySignatureCache } from '../classify/llm/memory-cache.js';
import type { LlmClient } from '../classify/llm/port.js';
import { signatureOf } from '../classify/llm/signature.js';
import { createLlmStats, type LlmStats } from '../classify/llm/stats.js';
import { classifySnapshot, type RuleContext } from '../classify/rules.js';
import { parseDump } from '../collect/parse/dump.js';
import { loadPolicy } from '../config/policy-file.js';
import type { ClassificationSource, Severity, Verdict } from '../domain/finding.js';
import type { ClassificationPolicy } from '../domain/policy.js';
import { type CorpusItem, type CorpusSource, CorpusSources, type Expectation, loadCorpus } from './corpus.js';

export interface EvalGot {
  category: string;
  severity: Severity;
  xid?: number;
  gpu?: number;
  source: ClassificationSource;
}

export interface EvalItemResult {
  id: string;
  source: CorpusSource;
  note: string;
  expect: Expectation;
  /** Undefined when the dump could not be read at all (`error` says why). */
  got?: EvalGot;
  correct: boolean;
  /** What differs from the label: `category XID_WARNING_999 ≠ XID_CRITICAL_999`, … */
  mismatches: string[];
  /** The label says the rules cannot settle this dump. */
  labelledNeedsLlm: boolean;
  /** The rules leave something unsettled here: hybrid mode would ask the model. */
  unsettled: boolean;
  /** This run's mode sent (or would send, cache permitting) the dump to the model. */
  consulted: boolean;
  signature?: string;
  llm: LlmOutcome;
  error?: string;
}

export interface Tally {
  total: number;
  correct: number;
  /** correct / total, 0 when there is nothing to count. */
  accuracy: number;
}

export interface EvalReport {
  mode: ClassifierMode;
  /** Which model answered: the rules only, the Bedrock fake (with its caveat), or real Bedrock. */
  backend: string;
  corpusDir: string;
  policyPath?: string;
  items: EvalItemResult[];
  overall: Tally;
  bySource: Record<CorpusSource, Tally>;
  /** Items the rules settle alone / items they leave to the model. */
  settled: Tally;
  unsettled: Tally;
  /** Distinct fault signatures among the consulted items: the model calls a perfect cache makes. */
  distinctSignatures: number;
  llm: LlmStats & { avgLatencyMs: number };
}

export interface RunEvalOptions {
  corpusDir: string;
  /** POLICY_FILE for the run (operator categories); undefined = NVIDIA defaults only. */
  policyPath?: string;
  mode: ClassifierMode;
  /** The model client for hybrid/llm modes; without one every model question falls back (`no_client`). */
  llm?: LlmClient;
  /** How to name the model in the report. */
  backend?: string;
  /** Already loaded corpus (saves reading it twice when comparing modes). */
  items?: CorpusItem[];
  logger?: Logger;
}

function tally(results: EvalItemResult[]): Tally {
  const correct = results.filter((r) => r.correct).length;
  return { total: results.length, correct, accuracy: results.length === 0 ? 0 : correct / results.length };
}

/** Compares a verdict with a label: category always, severity/xid/gpu where the label gives them. */
export function compareWithLabel(expect: Expectation, got: EvalGot): string[] {
  const out: string[] = [];
  if (got.category !== expect.category) out.push(`category ${got.category} ≠ ${expect.category}`);
  if (expect.severity !== undefined && got.severity !== expect.severity)
    out.push(`severity ${got.severity} ≠ ${expect.severity}`);
  if (expect.xid !== undefined && got.xid !== expect.xid)
    out.push(`xid ${got.xid ?? 'none'} ≠ ${expect.xid}`);
  if (expect.gpu !== undefined && got.gpu !== expect.gpu)
    out.push(`gpu ${got.gpu ?? 'none'} ≠ ${expect.gpu}`);
  return out;
}

function gotOf(v: Verdict): EvalGot {
  const got: EvalGot = { category: v.category, severity: v.severity, source: v.source };
  if (v.xid !== undefined) got.xid = v.xid;
  if (v.gpu !== undefined) got.gpu = v.gpu;
  return got;
}

export async function runEval(options: RunEvalOptions): Promise<EvalReport> {
  const { mode, logger } = options;
  const items = options.items ?? loadCorpus(options.corpusDir);
  const policy: ClassificationPolicy = loadPolicy(options.policyPath).classification;
  const ruleCtx: RuleContext = { catalog: loadXidCatalog(), policy, frCodes: loadDcgmFrCatalog() };
  const rules = (s: Parameters<typeof classifySnapshot>[0]) => classifySnapshot(s, ruleCtx);
  const stats = createLlmStats();
  const classifier = createHybridClassifier({
    mode,
    rules,
    llm: options.llm,
    cache: new MemorySignatureCache(),
    policy,
    // The budget protects a fleet's bill; an evaluation that ran out of it would measure nothing.
    maxCallsPerHour: Number.MAX_SAFE_INTEGER,
    stats,
    ...(logger ? { logger } : {}),
  });

  const results: EvalItemResult[] = [];
  const signatures = new Set<string>();
  for (const item of items) {
    const base = {
      id: item.id,
      source: item.source,
      note: item.note,
      expect: item.expect,
      labelledNeedsLlm: item.needsLlm,
    };
    try {
      const parsed = parseDump(item.text, { node: item.id });
      const snapshot = parsed.snapshot;
      if (item.expectedGpus !== undefined) snapshot.expectedGpus = item.expectedGpus;
      const rulesVerdict = rules(snapshot);
      const unsettled = needsLlm('hybrid', snapshot, rulesVerdict, policy);
      const consulted = needsLlm(mode, snapshot, rulesVerdict, policy);
      const signature = consulted ? signatureOf(snapshot, rulesVerdict, policy, mode) : undefined;
      if (signature) signatures.add(signature);
      const { verdict, llm } = await classifier.classifyDetailed(snapshot);
      const got = gotOf(verdict);
      const mismatches = compareWithLabel(item.expect, got);
      const result: EvalItemResult = {
        ...base,
        got,
        correct: mismatches.length === 0,
        mismatches,
        unsettled,
        consulted,
        llm,
      };
      if (signature) result.signature = signature;
      results.push(result);
    } catch (err) {
      // A dump that cannot be read is a wrong answer for that item, not the end of the evaluation.
      const message = err instanceof Error ? err.message : String(err);
      logger?.warn({ item: item.id, err: message }, 'eval item failed');
      results.push({
        ...base,
        correct: false,
        mismatches: [`error: ${message}`],
        unsettled: false,
        consulted: false,
        llm: { kind: 'skipped' },
        error: message,
      });
    }
  }

  const bySource = Object.fromEntries(
    CorpusSources.map((s) => [s, tally(results.filter((r) => r.source === s))]),
  ) as Record<CorpusSource, Tally>;
  const report: EvalReport = {
    mode,
    backend: options.backend ?? (mode === 'rules' ? 'none (rules only)' : 'unnamed model client'),
    corpusDir: options.corpusDir,
    items: results,
    overall: tally(results),
    bySource,
    settled: tally(results.filter((r) => !r.unsettled)),
    unsettled: tally(results.filter((r) => r.unsettled)),
    distinctSignatures: signatures.size,
    llm: {
      ...stats,
      rejections: { ...stats.rejections },
      fallbacks: { ...stats.fallbacks },
      avgLatencyMs: stats.latencyCount === 0 ? 0 : stats.latencyMsSum / stats.latencyCount,
    },
  };
  if (options.policyPath !== undefined) report.policyPath = options.policyPath;
  return report;
}

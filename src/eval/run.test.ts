/**
 * The evaluation over the real corpus in eval/: the rules are asserted item by item (a classifier regression
 * names the dump it broke), and the hybrid pipeline runs with the real Bedrock SDK client against the
 * simulator's Converse fake scripted as an oracle. Call counts are read from the fake, not from our stats.
 */
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicy } from '../config/policy-file.js';
import { loadCorpus } from './corpus.js';
import { formatReport } from './format.js';
import { type OracleBedrock, oracleBackendNote, startOracleBedrock } from './oracle.js';
import { type EvalReport, runEval } from './run.js';

const corpusDir = fileURLToPath(new URL('../../eval/corpus', import.meta.url));
const policyPath = fileURLToPath(new URL('../../eval/policy.yaml', import.meta.url));
const items = loadCorpus(corpusDir);
const policy = loadPolicy(policyPath).classification;
const settledByLabel = items.filter((i) => !i.needsLlm).map((i) => i.id);
const needsLlmByLabel = items.filter((i) => i.needsLlm).map((i) => i.id);

function item(report: EvalReport, id: string) {
  const r = report.items.find((x) => x.id === id);
  if (!r) throw new Error(`no result for ${id}`);
  return r;
}

describe('the corpus', () => {
  it('has every kind of source and both settled and unsettled dumps', () => {
    expect(items.length).toBeGreaterThanOrEqual(40);
    for (const s of ['kernel', 'exporter', 'dcgmi', 'bundle'] as const) {
      expect(items.filter((i) => i.source === s).length).toBeGreaterThanOrEqual(5);
    }
    expect(needsLlmByLabel.length).toBeGreaterThanOrEqual(5);
    expect(items.some((i) => i.expect.category === 'FABRIC_MANAGER_DOWN')).toBe(true);
  });
});

describe('rules mode', () => {
  let report: EvalReport;
  beforeAll(async () => {
    report = await runEval({ corpusDir, policyPath, mode: 'rules', items });
  });

  it.each(settledByLabel)('the rules classify %s as labelled', (id) => {
    const r = item(report, id);
    expect(r.mismatches).toEqual([]);
    expect(r.correct).toBe(true);
    expect(r.got?.source).toBe('rules');
  });

  it.each(needsLlmByLabel)('%s is marked as needing the LLM and keeps the rules verdict', (id) => {
    const r = item(report, id);
    expect(r.unsettled).toBe(true);
    expect(r.consulted).toBe(false);
    expect(r.llm).toEqual({ kind: 'skipped' });
    expect(r.got?.source).toBe('rules');
  });

  it('counts accuracy per source and never calls a model', () => {
    expect(report.items).toHaveLength(items.length);
    expect(report.overall.total).toBe(items.length);
    const sum = Object.values(report.bySource).reduce((n, t) => n + t.total, 0);
    expect(sum).toBe(items.length);
    expect(report.settled.accuracy).toBe(1);
    expect(report.unsettled.correct).toBeLessThan(report.unsettled.total);
    expect(report.llm.calls).toBe(0);
    expect(report.distinctSignatures).toBe(0);
    expect(formatReport(report)).toContain('rules — needs LLM');
  });
});

describe('hybrid mode against the Bedrock fake (scripted oracle)', () => {
  let oracle: OracleBedrock | undefined;
  afterEach(async () => {
    oracle?.sim.log.assertNoUnexpected();
    await oracle?.close();
    oracle = undefined;
  });

  it('classifies every item right with one model call per distinct unsettled signature', async () => {
    oracle = await startOracleBedrock(items, policy);
    const report = await runEval({
      corpusDir,
      policyPath,
      mode: 'hybrid',
      items,
      llm: oracle.llm,
      backend: oracleBackendNote,
    });

    for (const r of report.items)
      expect({ id: r.id, mismatches: r.mismatches }).toEqual({ id: r.id, mismatches: [] });
    expect(report.overall.accuracy).toBe(1);

    const consulted = report.items.filter((r) => r.consulted);
    const distinct = new Set(consulted.map((r) => r.signature));
    expect(report.distinctSignatures).toBe(distinct.size);
    expect(oracle.sim.bedrock.calls).toHaveLength(distinct.size);
    expect(report.llm.calls).toBe(distinct.size);
    // The corpus repeats faults on other nodes: those must come from the cache, not from the model.
    expect(distinct.size).toBeLessThan(consulted.length);
    expect(report.llm.cacheHits).toBe(consulted.length - distinct.size);
    expect(report.items.filter((r) => r.llm.kind === 'answered' && r.llm.source === 'cache')).toHaveLength(
      consulted.length - distinct.size,
    );
    expect(report.llm.fallbacks).toEqual({});
    expect(report.llm.inputTokens).toBeGreaterThan(0);

    // The operator's category reached the model with its description.
    const system = JSON.stringify(oracle.sim.bedrock.calls.map((c) => c.system));
    expect(system).toContain('FABRIC_MANAGER_DOWN: The NVIDIA Fabric Manager service');
    expect(formatReport(report)).toContain(oracleBackendNote);
  });

  it('rejects and counts an answer naming a category outside the taxonomy; the rules verdict stands', async () => {
    const target = 'journal-fabricmanager-failed-a.log';
    oracle = await startOracleBedrock(items, policy, {
      tamper: (it, answer) => (it.id === target ? { ...answer, category: 'DISK_FULL' } : answer),
    });
    const report = await runEval({ corpusDir, policyPath, mode: 'hybrid', items, llm: oracle.llm });

    expect(report.llm.rejections).toEqual({ unknown_category: 1 });
    const sig = item(report, target).signature;
    const sameFault = report.items.filter((r) => r.signature === sig);
    // The rejection is cached for the signature: the same fault on other nodes is not asked again.
    expect(sameFault.length).toBeGreaterThan(1);
    expect(report.llm.fallbacks).toEqual({ rejected: sameFault.length });
    for (const r of sameFault) {
      expect(r.correct).toBe(false);
      expect(r.llm).toMatchObject({ kind: 'fallback', reason: 'rejected' });
      expect(r.got).toMatchObject({ category: 'UNKNOWN', source: 'rules' });
    }
    expect(oracle.sim.bedrock.calls).toHaveLength(report.distinctSignatures);
    expect(report.overall.correct).toBe(items.length - sameFault.length);
  });

  it('falls back to the rules, counted, when no model client is given', async () => {
    const report = await runEval({ corpusDir, policyPath, mode: 'hybrid', items });
    const consulted = report.items.filter((r) => r.consulted).length;
    expect(report.llm.fallbacks).toEqual({ no_client: consulted });
    expect(report.settled.accuracy).toBe(1);
  });
});

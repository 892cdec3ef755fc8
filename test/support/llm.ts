/**
 * Builders shared by this folder's tests: snapshots and a stand-in for the rules classifier
 * (src/classify/rules.ts is the real one; these tests only need its contract: ambiguous findings).
 */

import type { LlmClient, LlmRequest, LlmResponse } from '../../src/classify/llm/port.js';
import { type Finding, type Verdict, verdictOf } from '../../src/domain/finding.js';
import type { GpuSample, NodeSnapshot } from '../../src/domain/gpu.js';

export function gpus(count: number, extra: (i: number) => Partial<GpuSample> = () => ({})): GpuSample[] {
  return Array.from({ length: count }, (_, index) => ({
    index,
    uuid: `GPU-${index}a1b2c3d-0000-1111-2222-${String(index).padStart(12, '0')}`,
    xidLast: 0,
    ...extra(index),
  }));
}

export function snapshot(node: string, overrides: Partial<NodeSnapshot> = {}): NodeSnapshot {
  return { node, takenAt: 1_700_000_000_000, source: 'exporter', gpus: gpus(8), ...overrides };
}

/** The kernel's own XID line, with everything node-specific in it. */
export function xidLine(opts: { xid: number; pid: number; bus: string; secs: number; text: string }): string {
  return `[${opts.secs.toFixed(6)}] NVRM: Xid (PCI:0000:${opts.bus}:00): ${opts.xid}, pid=${opts.pid}, name=python3, ${opts.text}`;
}

const knownXids: Record<number, Pick<Finding, 'severity' | 'action'>> = {
  79: { severity: 'critical', action: 'replace' },
  48: { severity: 'critical', action: 'reboot' },
  13: { severity: 'warning', action: 'none' },
};

/** Stand-in rules: known XIDs settled, unknown XIDs and unparsed text ambiguous. */
export function fakeRules(s: NodeSnapshot): Verdict {
  const findings: Finding[] = [];
  for (const g of s.gpus) {
    const xid = g.xidLast ?? 0;
    if (xid === 0) continue;
    const known = knownXids[xid];
    findings.push({
      kind: 'xid',
      category: `XID_${known?.severity === 'critical' ? 'CRITICAL' : 'WARNING'}_${xid}`,
      severity: known?.severity ?? 'warning',
      action: known?.action ?? 'monitor',
      gpu: g.index,
      xid,
      evidence: [`DCGM_FI_DEV_XID_ERRORS{gpu="${g.index}"} ${xid}`],
      explanation: known ? `XID ${xid}.` : `XID ${xid} is not in the catalog.`,
      source: 'rules',
      key: `xid:${xid}:gpu${g.index}`,
      ...(known ? {} : { ambiguous: true }),
    });
  }
  if ((s.unparsed?.length ?? 0) > 0) {
    findings.push({
      kind: 'unknown',
      category: 'GPU_HEALTH_WARNING',
      severity: 'warning',
      action: 'none',
      evidence: s.unparsed ?? [],
      explanation: 'Unrecognized GPU-related text.',
      source: 'rules',
      key: 'unparsed',
      ambiguous: true,
    });
  }
  return verdictOf(s.node, findings);
}

/** An LlmClient for pure-logic tests: scripted answers, every request kept. */
export class ScriptedLlm implements LlmClient {
  readonly requests: LlmRequest[] = [];
  constructor(private readonly answer: (req: LlmRequest, n: number) => Promise<LlmResponse> | LlmResponse) {}
  async classify(request: LlmRequest): Promise<LlmResponse> {
    this.requests.push(request);
    return this.answer(request, this.requests.length);
  }
}

export function toolAnswer(input: unknown): LlmResponse {
  return { input, usage: { inputTokens: 900, outputTokens: 60 }, latencyMs: 5 };
}

/** Node conditions: GPU problems and node problems that kubelet, the EKS node monitoring agent or NPD report. */
import { normalizePciBusId, parseKernelXidLine } from '../collect/parse/kernel-log.js';
import { type Finding, NODE_CONDITION } from '../domain/finding.js';
import type { NodeCondition, NodeSnapshot } from '../domain/gpu.js';
import { finding, type RuleContext, type XidObs, xidFinding } from './xid-rules.js';

const STANDARD_CONDITIONS = new Set([
  'Ready',
  'MemoryPressure',
  'DiskPressure',
  'PIDPressure',
  'NetworkUnavailable',
]);
const GPU_CONDITION_RE = /gpu|xid|nvidia|nvlink|accelerat|dcgm|ecc/i;
/** node-problem-detector's default problem conditions (True = a problem); none is about GPUs. */
const NPD_NODE_PROBLEMS = new Set([
  'KernelDeadlock',
  'ReadonlyFilesystem',
  'FrequentKubeletRestart',
  'FrequentDockerRestart',
  'FrequentContainerdRestart',
  'CorruptDockerOverlay2',
]);

/**
 * What a node condition reports: a GPU problem, a node problem, or nothing. GPU conditions are the EKS node
 * monitoring agent's AcceleratedHardwareReady and NVIDIA's / node-problem-detector's GPU conditions (a type
 * naming the GPU, NVIDIA, XID, NVLink, DCGM or ECC). The agent's other `*Ready` conditions (KernelReady,
 * NetworkingReady, StorageReady, ContainerRuntimeReady) going False, and NPD's default node problems, are
 * node problems: real, worth an alert, but no GPU fault.
 */
export function conditionProblem(c: NodeCondition): 'gpu' | 'node' | undefined {
  if (STANDARD_CONDITIONS.has(c.type)) return undefined;
  if (/Ready$/.test(c.type)) {
    if (c.status !== 'False') return undefined;
    return c.type === 'AcceleratedHardwareReady' || GPU_CONDITION_RE.test(c.type) ? 'gpu' : 'node';
  }
  if (c.status !== 'True') return undefined;
  if (GPU_CONDITION_RE.test(`${c.type} ${c.reason ?? ''}`)) return 'gpu';
  return NPD_NODE_PROBLEMS.has(c.type) ? 'node' : undefined;
}

export function conditionFindings(
  snapshot: NodeSnapshot,
  xids: Map<string, XidObs>,
  ctx: RuleContext,
): Finding[] {
  const out: Finding[] = [];
  for (const c of snapshot.conditions ?? []) {
    const problem = conditionProblem(c);
    if (!problem) continue;
    const evidence = `condition ${c.type}=${c.status}${c.reason ? ` reason=${c.reason}` : ''}${c.message ? ` message="${c.message}"` : ''}`;
    if (problem === 'node') {
      // One incident per condition type (a new reason is the same problem); the policy decides, alert only by default.
      out.push(
        finding(
          'condition',
          NODE_CONDITION,
          'warning',
          'none',
          `condition:${c.type}`,
          `Node condition ${c.type} is ${c.status}${c.reason ? ` (${c.reason})` : ''}: a node problem, not a GPU fault.`,
          [evidence],
        ),
      );
      continue;
    }
    const xidMatch = /(?:Nvidia)?XID(\d+)/i.exec(`${c.reason ?? ''} ${c.type}`);
    if (xidMatch) {
      const xid = Number(xidMatch[1]);
      // Same XID already seen from DCGM/kernel: the condition is more evidence for it, not a new fault.
      const existing = [...xids.values()].filter((o) => o.xid === xid);
      if (existing.length > 0) {
        for (const o of existing) o.evidence.push(evidence);
        continue;
      }
      const fromMsg = c.message ? parseKernelXidLine(c.message) : undefined;
      const gpu = fromMsg
        ? snapshot.gpus.find((g) => g.pciBusId && normalizePciBusId(g.pciBusId) === fromMsg.pciBusId)?.index
        : undefined;
      const key = gpu !== undefined ? `xid:${xid}:gpu${gpu}` : `xid:${xid}:condition`;
      const o: XidObs = {
        xid,
        key,
        messages: c.message ? [fromMsg?.message ?? c.message] : [],
        evidence: [evidence],
      };
      if (gpu !== undefined) o.gpu = gpu;
      const f = xidFinding(o, ctx);
      f.kind = 'condition';
      out.push(f);
      continue;
    }
    const text = `${c.reason ?? ''} ${c.type}`;
    const key = `condition:${c.type}${c.reason ? `:${c.reason}` : ''}`;
    const why = `Node condition ${c.type} is ${c.status}${c.reason ? ` (${c.reason})` : ''}`;
    if (/double.?bit|dbe|uncorrectable/i.test(text)) {
      out.push(
        finding('condition', 'ECC_ERROR', 'critical', 'reboot', key, `${why}: uncorrectable memory errors.`, [
          evidence,
        ]),
      );
    } else if (/nvlink/i.test(text)) {
      out.push(
        finding('condition', 'NVLINK_ERROR', 'warning', 'monitor', key, `${why}: NVLink errors.`, [evidence]),
      );
    } else if (/thermal|temperature/i.test(text)) {
      out.push(
        finding('condition', 'THERMAL_WARNING', 'warning', 'none', key, `${why}: thermal.`, [evidence]),
      );
    } else {
      const f = finding('condition', 'GPU_HEALTH_ERROR', 'critical', 'reboot', key, `${why}.`, [evidence]);
      // A reason the rules do not know: the LLM may name it better; the policy still decides the action.
      f.ambiguous = true;
      out.push(f);
    }
  }
  return out;
}

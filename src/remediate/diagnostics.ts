/**
 * DCGM diagnostics on demand (`/gpu diag <node> [level]`, the alert's "Run diagnostics"): the diagnostic alone,
 * without cordoning — it changes nothing on the node, but it loads every GPU for minutes, so it is authorized
 * like an action, refused on a node under repair (the repair runs its own), and audited with what it found.
 */
import { type DiagLevel, type DiagRun, diagVerdict } from '../domain/diag.js';
import { isWorking } from '../domain/incident.js';
import type { ServiceKit } from './service-kit.js';

export type DiagnosticsResult =
  | { ok: true; node: string; level: DiagLevel; run: DiagRun }
  | {
      ok: false;
      code: 'denied' | 'not_found' | 'busy' | 'invalid';
      /** The fact behind the refusal (an incident id, what is missing). */
      detail?: string;
    };

export class Diagnostics {
  constructor(private readonly kit: ServiceKit) {}

  async run(node: string, level: DiagLevel, actor: string): Promise<DiagnosticsResult> {
    const { deps } = this.kit;
    const audit = (result: string, details: Record<string, unknown>) =>
      deps.audit.append({
        at: deps.clock.now(),
        actor,
        action: 'diagnose',
        node,
        result,
        details: { level, ...details },
      });
    if (!(await deps.authorize(actor, 'diagnose'))) {
      audit('denied', {});
      return { ok: false, code: 'denied' };
    }
    if (!deps.diag) {
      audit('invalid', { reason: 'no DCGM diagnostics configured' });
      return { ok: false, code: 'invalid', detail: 'this gpu-medic has no DCGM diagnostics' };
    }
    if (!(await deps.cluster.getNode(node))) {
      audit('not_found', {});
      return { ok: false, code: 'not_found' };
    }
    const repairing = deps.incidents.list({ node, open: true }).find((i) => isWorking(i.state));
    if (repairing) {
      audit('busy', { incidentId: repairing.id });
      return { ok: false, code: 'busy', detail: repairing.id };
    }
    const startedAt = deps.clock.now();
    const run = await deps.diag.run(node, level);
    const tookMs = deps.clock.now() - startedAt;
    if (run.kind === 'report') {
      const verdict = diagVerdict(run.report);
      audit(verdict, { verdict, tookMs, results: run.report.results, pod: run.pod });
    } else {
      audit(run.kind, { reason: run.reason, tookMs });
    }
    return { ok: true, node, level, run };
  }
}

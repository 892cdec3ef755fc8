/**
 * The steps of a remediation. Each one looks at the real world first, so running it again after a crash
 * never repeats an effect that already happened; `ctx.begin` writes (or returns the resumed) `started` row
 * BEFORE the effect, the engine writes `done` after it. In dry run no mutating port is called.
 */
import { diagnose } from './diag-steps.js';
import { cordon, drain, kubeflowSnapshot, uncordon } from './drain-steps.js';
import { followJobs } from './job-steps.js';
import { reboot, verifyScan, waitNodeBack } from './reboot-steps.js';
import { replace, verifyReplacement, waitReplacement } from './replace-steps.js';
import { reset } from './reset-steps.js';
import type { StepName } from './state-machine.js';
import { done, type StepContext, type StepOutcome } from './step-kit.js';

export { RETRY_BASE_MS } from './drain-steps.js';
export type { StepContext, StepOutcome, StepProgress } from './step-kit.js';

export async function runStep(step: StepName, ctx: StepContext): Promise<StepOutcome> {
  switch (step) {
    case 'cordon':
      return cordon(ctx);
    case 'kubeflow_snapshot':
      return kubeflowSnapshot(ctx);
    case 'drain':
      return drain(ctx);
    case 'reset':
      return reset(ctx);
    case 'reboot':
      return reboot(ctx);
    case 'wait_node_back':
      return waitNodeBack(ctx);
    case 'verify_scan':
      return verifyScan(ctx);
    case 'diagnose':
      return diagnose(ctx);
    case 'uncordon':
      return uncordon(ctx);
    case 'replace':
      return replace(ctx);
    case 'wait_replacement':
      return waitReplacement(ctx);
    case 'verify_replacement':
      return verifyReplacement(ctx);
    case 'follow_jobs':
      return followJobs(ctx);
    case 'resolve':
      return done({}, null);
  }
}

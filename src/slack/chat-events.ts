/**
 * The remediation progress events the Slack thread renders. The event type and the `details` each step
 * carries live in the domain (src/domain/events.ts — the contract between the engine that publishes and
 * the thread that renders); this file re-exports them with the lenient reader (src/domain/event-details.ts),
 * because a missing or mistyped detail must degrade a line, never crash the thread.
 */

export {
  readEvent,
  readStepDetails,
  StepDetailsSchema,
  withoutDetails,
} from '../domain/event-details.js';
export type {
  DetailsOf,
  KubeflowJobRef,
  ProgressDetails,
  ProgressEvent,
  ProgressEventOf,
  ProgressStep,
  SafetyLimitKind,
  StepDetails,
  StepDetailsOf,
} from '../domain/events.js';
export { ProgressSteps, SafetyLimitKinds } from '../domain/events.js';

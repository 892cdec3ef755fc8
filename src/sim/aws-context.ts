/**
 * What the simulated AWS endpoint's handlers share, one per server: the effects on the simulated
 * cluster, the state kept for assertions, the scripted answers and the server's options. Each route
 * module is a factory over the part of it that it needs.
 */

import { BedrockScripts } from './aws-bedrock.js';
import { AwsFaults } from './aws-faults.js';
import type { LambdaResponder, SimAwsState } from './aws-notify.js';
import type { CloudEffects } from './cloud-effects.js';
import { PendingTimers } from './http-util.js';

export interface AwsContext {
  /** Effects on instances and node groups: the simulated cluster implements them. */
  effects: CloudEffects;
  /** What the notifier sent, kept for assertions. */
  state: SimAwsState;
  faults: AwsFaults;
  bedrock: BedrockScripts;
  /** Delays still pending (scripted or injected), cleared when the server closes. */
  timers: PendingTimers;
  options: {
    /** When set, SigV4 credential scopes must name this region. */
    region?: string;
    /** Keep at most this many entries per `state` list. 0 = unbounded. */
    stateLimit: number;
  };
  /** What a RequestResponse Lambda invocation returns; set through `SimAws.lambda.respond`. */
  lambdaResponder: LambdaResponder | undefined;
  /** Appends to a `state` list, dropping the oldest entries beyond `options.stateLimit`. */
  keep<T>(list: T[], items: T[]): void;
}

export function createAwsContext(
  effects: CloudEffects,
  options: { region?: string; stateLimit?: number },
): AwsContext {
  const stateLimit = options.stateLimit ?? 0;
  return {
    effects,
    state: { cloudwatch: [], sns: [], lambda: [] },
    faults: new AwsFaults(),
    bedrock: new BedrockScripts(),
    timers: new PendingTimers(),
    options: { region: options.region, stateLimit },
    lambdaResponder: undefined,
    keep<T>(list: T[], items: T[]): void {
      for (const item of items) list.push(item);
      if (stateLimit > 0 && list.length > stateLimit) list.splice(0, list.length - stateLimit);
    },
  };
}

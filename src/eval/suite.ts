/**
 * What `gpu-medic eval` runs: the rules alone (the baseline), then the chosen mode against a model —
 * the simulator's scripted Bedrock fake by default, real Bedrock only when asked (`--real`) and credentials
 * are present. The fake is closed whatever happens.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createBedrockClassifierClient } from '../aws/bedrock.js';
import type { ClassifierMode } from '../classify/llm/hybrid.js';
import { defaultBedrockModelIdFor } from '../config/bedrock-model.js';
import { loadPolicy } from '../config/policy-file.js';
import { loadCorpus } from './corpus.js';
import { oracleBackendNote, startOracleBedrock } from './oracle.js';
import { type EvalReport, runEval } from './run.js';

export interface EvalSuiteOptions {
  corpusDir: string;
  policyPath?: string;
  mode: ClassifierMode;
  /** Use real Bedrock (AWS_REGION, BEDROCK_MODEL_ID); requires credentials. */
  real?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Where ~/.aws is looked for; tests point it at an empty folder. */
  homeDir?: string;
  logger?: Logger;
}

export interface EvalSuiteResult {
  runs: EvalReport[];
  /** Requests the Bedrock fake received (counted by the fake, not by us); undefined for real Bedrock. */
  fakeRequests?: number;
}

export class NoCredentialsError extends Error {
  readonly code = 'NO_AWS_CREDENTIALS';
  constructor() {
    super(
      '--real needs AWS credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE, container or web-identity credentials, or ~/.aws/credentials)',
    );
    this.name = 'NoCredentialsError';
  }
}

/** A cheap look for credentials the SDK's default chain would find; it decides nothing beyond a clear error. */
export function hasAwsCredentials(env: NodeJS.ProcessEnv = process.env, home = homedir()): boolean {
  const keys = [
    'AWS_ACCESS_KEY_ID',
    'AWS_PROFILE',
    'AWS_CONTAINER_CREDENTIALS_FULL_URI',
    'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
    'AWS_WEB_IDENTITY_TOKEN_FILE',
    'AWS_BEARER_TOKEN_BEDROCK',
  ];
  if (keys.some((k) => (env[k] ?? '') !== '')) return true;
  return existsSync(join(home, '.aws', 'credentials'));
}

export async function runEvalSuite(options: EvalSuiteOptions): Promise<EvalSuiteResult> {
  const env = options.env ?? process.env;
  const items = loadCorpus(options.corpusDir);
  const common = {
    corpusDir: options.corpusDir,
    items,
    ...(options.policyPath !== undefined ? { policyPath: options.policyPath } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  };
  const baseline = await runEval({ ...common, mode: 'rules' });
  if (options.mode === 'rules') return { runs: [baseline] };

  if (options.real) {
    if (!hasAwsCredentials(env, options.homeDir)) throw new NoCredentialsError();
    const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1';
    const modelId = env.BEDROCK_MODEL_ID || defaultBedrockModelIdFor(region);
    const endpoint = env.AWS_ENDPOINT_URL_BEDROCK_RUNTIME;
    const llm = createBedrockClassifierClient({
      region,
      modelId,
      ...(endpoint ? { endpoint } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    });
    const run = await runEval({
      ...common,
      mode: options.mode,
      llm,
      backend: `Amazon Bedrock ${modelId} in ${region} (real model)`,
    });
    return { runs: [baseline, run] };
  }

  const policy = loadPolicy(options.policyPath).classification;
  const oracle = await startOracleBedrock(items, policy);
  try {
    const run = await runEval({ ...common, mode: options.mode, llm: oracle.llm, backend: oracleBackendNote });
    oracle.sim.log.assertNoUnexpected();
    return { runs: [baseline, run], fakeRequests: oracle.sim.bedrock.calls.length };
  } finally {
    await oracle.close();
  }
}

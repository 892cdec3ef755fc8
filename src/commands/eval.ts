/**
 * `gpu-medic eval [--mode rules|hybrid|llm] [--real] [--json] [--corpus DIR] [--policy FILE]`:
 * the classifier over the labelled corpus in eval/, rules alone first, then the chosen mode. Exit 0 when the
 * evaluation ran, whatever its accuracy (it is a measurement, not a gate); non-zero only when it could not run.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type ClassifierMode, ClassifierModes } from '../classify/llm/hybrid.js';
import { PolicyError } from '../config/policy-file.js';
import { CorpusError } from '../eval/corpus.js';
import { formatReport } from '../eval/format.js';
import { NoCredentialsError, runEvalSuite } from '../eval/suite.js';
import { CliError } from './cli-error.js';

export const evalUsage =
  'gpu-medic eval [--mode rules|hybrid|llm] [--real] [--json] [--corpus DIR] [--policy FILE]';

/** eval/ at the repo root: two levels up from src/commands, three from dist/src/commands. */
function repoPath(rel: string): string {
  const fromSrc = fileURLToPath(new URL(`../../${rel}`, import.meta.url));
  return import.meta.url.includes('/dist/')
    ? fileURLToPath(new URL(`../../../${rel}`, import.meta.url))
    : fromSrc;
}

function isMode(v: string): v is ClassifierMode {
  return (ClassifierModes as readonly string[]).includes(v);
}

export async function main(argv: string[]): Promise<number> {
  let values: { mode?: string; real?: boolean; json?: boolean; corpus?: string; policy?: string };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        mode: { type: 'string' },
        real: { type: 'boolean' },
        json: { type: 'boolean' },
        corpus: { type: 'string' },
        policy: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new CliError(`${err instanceof Error ? err.message : String(err)}\nUsage: ${evalUsage}`, 2);
  }
  const mode = values.mode ?? 'hybrid';
  if (!isMode(mode))
    throw new CliError(`--mode must be one of ${ClassifierModes.join(', ')}, not '${mode}'`, 2);
  const corpusDir = values.corpus ?? repoPath('eval/corpus');
  // The corpus's operator categories live next to it; an explicit --policy (or none with --corpus) wins.
  const policyPath =
    values.policy ?? (values.corpus === undefined ? repoPath('eval/policy.yaml') : undefined);

  try {
    const result = await runEvalSuite({
      corpusDir,
      mode,
      real: values.real === true,
      ...(policyPath !== undefined ? { policyPath } : {}),
    });
    if (values.json) {
      console.log(JSON.stringify(result, null, 2));
    } else {
      console.log(result.runs.map(formatReport).join('\n\n'));
      if (result.fakeRequests !== undefined)
        console.log(`\nthe Bedrock fake received ${result.fakeRequests} Converse request(s)`);
    }
    return 0;
  } catch (err) {
    if (err instanceof CorpusError || err instanceof PolicyError || err instanceof NoCredentialsError) {
      throw new CliError(err.message, 1);
    }
    throw err;
  }
}

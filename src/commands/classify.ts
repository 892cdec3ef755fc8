import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadDcgmFrCatalog, loadXidCatalog } from '../classify/catalog.js';
import { formatVerdictDetail, verdictToJson } from '../classify/format.js';
import { classifySnapshot } from '../classify/rules.js';
import { parseDump, splitNodeBlocks } from '../collect/parse/dump.js';
import { MetricsParseError } from '../collect/parse/prometheus.js';
import { defaultPolicy, loadPolicy } from '../config/policy-file.js';
import type { Verdict } from '../domain/finding.js';
import type { MissingPart, NodeSnapshot } from '../domain/gpu.js';
import { CliError } from './cli-error.js';

/**
 * `gpu-medic classify [--json] [--llm] [FILE|-]…`: classify dumps without a cluster. Each input is
 * auto-detected (Prometheus exposition, kernel log, dcgmi output, the AWS sample's bundle).
 */
export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean', default: false }, llm: { type: 'boolean', default: false } },
    allowPositionals: true,
  });
  const inputs = positionals.length > 0 ? positionals : ['-'];
  const policy = process.env.POLICY_FILE ? loadPolicy(process.env.POLICY_FILE) : defaultPolicy();
  const ctx = { catalog: loadXidCatalog(), frCodes: loadDcgmFrCatalog(), policy: policy.classification };
  const classify = values.llm
    ? await llmClassifier(policy)
    : async (s: NodeSnapshot) => classifySnapshot(s, ctx);

  let failed = 0;
  for (const input of inputs) {
    let text: string;
    try {
      text = input === '-' ? readFileSync(0, 'utf8') : readFileSync(input, 'utf8');
    } catch (error) {
      throw new CliError(
        `cannot read ${input}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
    // A whole AWS-sample run log holds one block per node: each is its own verdict, named by NODE_INFO.
    const blocks = splitNodeBlocks(text);
    for (const [i, block] of blocks.entries()) {
      const label = blocks.length > 1 ? `${input}#${i + 1}` : input;
      const node = blocks.length > 1 ? undefined : input === '-' ? 'stdin' : input;
      let verdict: Verdict;
      let missing: MissingPart[] = [];
      try {
        const { snapshot, format } = parseDump(block, { ...(node ? { node } : {}), source: 'file' });
        if (format === 'unknown' && (snapshot.unparsed?.length ?? 0) === 0) {
          throw new MetricsParseError('not a Prometheus exposition, kernel log, dcgmi output or bundle');
        }
        missing = snapshot.missingParts ?? [];
        verdict = await classify(snapshot);
      } catch (error) {
        failed++;
        const message = `${label}: ${(error as Error).message}`;
        if (values.json) console.log(JSON.stringify({ input: label, error: message }));
        else console.error(`gpu-medic: ${message}`);
        continue;
      }
      // A part the dump lacks (a command of the AWS sample that failed) is said, not read as "no fault".
      if (values.json) console.log(JSON.stringify({ ...verdictToJson(label, verdict), missing }));
      else
        console.log(
          `${inputs.length > 1 || blocks.length > 1 ? `== ${label}\n` : ''}${formatVerdictDetail(verdict)}` +
            missing.map((m) => `\n  missing ${m.part}: ${m.reason}`).join(''),
        );
    }
  }
  return failed > 0 ? 1 : 0;
}

async function llmClassifier(policy: ReturnType<typeof defaultPolicy>) {
  const { configOrExit } = await import('./load-config.js');
  const config = configOrExit();
  const { openStoreFor } = await import('../store/index.js');
  const { createHybridClassifier } = await import('../classify/llm/hybrid.js');
  const { createBedrockClassifierClient } = await import('../aws/bedrock.js');
  const { createLogger } = await import('../log/logger.js');
  // Warnings (a refused model, a rejected answer) go to stderr, apart from the verdicts on stdout.
  const logger = createLogger({ level: 'warn', destination: process.stderr });
  const store = openStoreFor(config.store);
  const ctx = { catalog: loadXidCatalog(), frCodes: loadDcgmFrCatalog(), policy: policy.classification };
  const hybrid = createHybridClassifier({
    mode: config.classifier.mode === 'rules' ? 'hybrid' : config.classifier.mode,
    rules: (s) => classifySnapshot(s, ctx),
    llm: createBedrockClassifierClient({
      region: config.aws.region,
      modelId: config.classifier.bedrockModelId,
      timeoutMs: config.classifier.timeoutSeconds * 1000,
      logger,
    }),
    logger,
    cache: store.llmCache,
    policy: policy.classification,
    ttlMs: config.classifier.cacheTtlSeconds * 1000,
    maxCallsPerHour: config.classifier.maxCallsPerHour,
  });
  return (s: NodeSnapshot) => hybrid.classify(s);
}

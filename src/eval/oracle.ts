/**
 * A deterministic stand-in for the model: the simulator's Bedrock Converse fake, scripted to answer each
 * question with the corpus label of the node it is about. The real SDK client, prompt, tool schema,
 * validation, cache and fallback all run; only the model's judgement is replaced. So a run against it
 * measures the pipeline — never how good a model is — and every report says so.
 */
import { classifyToolName, createBedrockClassifierClient, defaultBedrockModelId } from '../aws/bedrock.js';
import type { LlmClient } from '../classify/llm/port.js';
import { categoryInfo } from '../classify/llm/taxonomy.js';
import type { ClassificationPolicy } from '../domain/policy.js';
import type { BedrockAnswer, BedrockScript, ConverseRequest, SimAws } from '../sim/aws-server.js';
import { startSimAws } from '../sim/aws-server.js';
import type { CloudEffects } from '../sim/cloud-effects.js';
import type { CorpusItem } from './corpus.js';

export const oracleBackendNote =
  'Bedrock fake (scripted oracle): measures the pipeline (prompt, validation, cache, fallback), not the model';

/** The tool input the oracle would send for one item; `tamper` may replace it (tests of rejection). */
export type OracleTamper = (item: CorpusItem, answer: Record<string, unknown>) => unknown;

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The user message's text: `Node: <name>` names the node, which is the corpus item's id. */
export function questionText(request: ConverseRequest): string {
  const first = request.messages[0];
  if (!isRecord(first) || !Array.isArray(first.content)) return '';
  return first.content.map((c) => (isRecord(c) && typeof c.text === 'string' ? c.text : '')).join('\n');
}

/** The category enum the request's tool offers: a real model can only pick from it. */
export function offeredCategoryEnum(request: ConverseRequest): string[] {
  for (const tool of request.toolConfig?.tools ?? []) {
    if (!isRecord(tool) || !isRecord(tool.toolSpec) || tool.toolSpec.name !== classifyToolName) continue;
    const schema = isRecord(tool.toolSpec.inputSchema) ? tool.toolSpec.inputSchema.json : undefined;
    const props = isRecord(schema) && isRecord(schema.properties) ? schema.properties : undefined;
    const category = props && isRecord(props.category) ? props.category : undefined;
    if (category && Array.isArray(category.enum)) return category.enum.filter((c) => typeof c === 'string');
  }
  return [];
}

export interface OracleOptions {
  tamper?: OracleTamper;
}

export function oracleScript(
  items: readonly CorpusItem[],
  policy: ClassificationPolicy,
  options: OracleOptions = {},
): BedrockScript {
  const byId = new Map(items.map((i) => [i.id, i]));
  return (request) => {
    const node = /^Node: (.+)$/m.exec(questionText(request))?.[1]?.trim();
    const item = node !== undefined ? byId.get(node) : undefined;
    // Plain text instead of a tool call: validation rejects it as not JSON, which the report shows.
    if (!item) return { text: `oracle: no label for node ${node ?? '(none named)'}` };
    const { category } = item.expect;
    if (!offeredCategoryEnum(request).includes(category)) {
      return { text: `oracle: the labelled category ${category} was not offered by the tool schema` };
    }
    const severity = categoryInfo(category, policy)?.severity ?? item.expect.severity ?? 'warning';
    const answer: Record<string, unknown> = {
      category,
      severity,
      gpu: item.expect.gpu ?? null,
      xid: item.expect.xid ?? null,
      confidence: 0.9,
      explanation: `Scripted oracle answer from the corpus label of ${item.id}.`,
    };
    const input = options.tamper ? options.tamper(item, answer) : answer;
    const reply: BedrockAnswer = { toolUse: { name: classifyToolName, input } };
    return reply;
  };
}

const noCloud: CloudEffects = {
  describeInstances: () => [],
  rebootInstance: () => false,
  terminateInstance: () => undefined,
};

export interface OracleBedrock {
  llm: LlmClient;
  sim: SimAws;
  modelId: string;
  close(): Promise<void>;
}

/** Starts the simulator's AWS endpoint on loopback with the oracle script and a real Bedrock client for it. */
export async function startOracleBedrock(
  items: readonly CorpusItem[],
  policy: ClassificationPolicy,
  options: OracleOptions = {},
): Promise<OracleBedrock> {
  const sim = await startSimAws(noCloud);
  sim.bedrock.script(oracleScript(items, policy, options));
  const modelId = defaultBedrockModelId;
  const llm = createBedrockClassifierClient({
    region: 'us-east-1',
    modelId,
    endpoint: sim.url,
    credentials: { accessKeyId: 'AKIDEVALORACLE', secretAccessKey: 'eval-oracle' },
    timeoutMs: 10_000,
    maxRetries: 0,
  });
  return { llm, sim, modelId, close: () => sim.close() };
}

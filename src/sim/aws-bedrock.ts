/**
 * Bedrock Runtime Converse: the Claude models Bedrock knows (refused like the real service), and
 * scripted answers (queued, then a script) shaped as Converse responses with tool use and usage.
 */

import { randomBytes } from 'node:crypto';
import type { AwsContext } from './aws-context.js';
import { AwsError, isRecord, JSON_REST, type Reply } from './aws-protocol.js';

export interface ConverseRequest {
  modelId: string;
  messages: unknown[];
  system?: unknown[];
  toolConfig?: { tools?: unknown[]; toolChoice?: unknown };
  inferenceConfig?: Record<string, unknown>;
  /** The whole parsed body, for anything else a test wants to look at. */
  body: Record<string, unknown>;
}

export interface BedrockAnswer {
  toolUse?: { name: string; input: unknown; toolUseId?: string };
  text?: string;
  /** Answer with this error code (`ThrottlingException`, `ValidationException` …) instead. */
  error?: string;
  /** HTTP status for `error` (defaults per code: throttling 429, validation 400 …). */
  status?: number;
  message?: string;
  stopReason?: string;
  usage?: { inputTokens?: number; outputTokens?: number };
  delayMs?: number;
}

export type BedrockScript = (request: ConverseRequest) => BedrockAnswer | Promise<BedrockAnswer>;

const BEDROCK_ERROR_STATUS: Record<string, number> = {
  ThrottlingException: 429,
  ModelNotReadyException: 429,
  ValidationException: 400,
  AccessDeniedException: 403,
  ResourceNotFoundException: 404,
  ModelTimeoutException: 408,
  ModelErrorException: 424,
  ServiceUnavailableException: 503,
  InternalServerException: 500,
  ServiceQuotaExceededException: 400,
};

/**
 * The Claude models Bedrock knows (Anthropic's "Claude on Amazon Bedrock" table and Bedrock's model
 * lifecycle page, 2026-12): lifecycle, the cross-region profile geographies, and whether the bare model id
 * may be called on demand (Claude 4.x: profiles only). Like the real service, Converse refuses an id it
 * does not know, a geography the model has no profile in, and an end-of-life model — before any script runs.
 */
export const SIM_BEDROCK_MODELS: Readonly<
  Record<
    string,
    {
      lifecycle: 'ACTIVE' | 'LEGACY' | 'EOL';
      profiles: readonly string[];
      onDemand: boolean;
      /** How an EOL model is refused: Claude 3.7 as an invalid id (real-clusters.md), others as EOL. */
      eolAs?: 'invalid' | 'eol';
    }
  >
> = {
  'anthropic.claude-opus-4-6-v1': {
    lifecycle: 'ACTIVE',
    profiles: ['global', 'us', 'eu', 'jp', 'apac'],
    onDemand: false,
  },
  'anthropic.claude-sonnet-4-6': {
    lifecycle: 'ACTIVE',
    profiles: ['global', 'us', 'eu', 'jp'],
    onDemand: false,
  },
  'anthropic.claude-sonnet-4-5-20250929-v1:0': {
    lifecycle: 'LEGACY',
    profiles: ['global', 'us', 'eu', 'jp'],
    onDemand: false,
  },
  'anthropic.claude-sonnet-4-20250514-v1:0': {
    lifecycle: 'LEGACY',
    profiles: ['global', 'us', 'eu', 'apac'],
    onDemand: false,
  },
  'anthropic.claude-3-7-sonnet-20250219-v1:0': {
    lifecycle: 'EOL',
    profiles: ['us', 'eu', 'apac'],
    onDemand: false,
    eolAs: 'invalid',
  },
  'anthropic.claude-3-5-sonnet-20240620-v1:0': {
    lifecycle: 'EOL',
    profiles: ['us', 'eu', 'apac'],
    onDemand: true,
    eolAs: 'eol',
  },
  'anthropic.claude-3-5-sonnet-20241022-v2:0': {
    lifecycle: 'EOL',
    profiles: ['us', 'apac'],
    onDemand: true,
    eolAs: 'eol',
  },
};

const INVALID_MODEL = 'The provided model identifier is invalid.';
const EOL_MODEL =
  'This model version has reached the end of its life. Please refer to the AWS documentation for more details.';

/** Why Bedrock would refuse this model id, or undefined when it serves it. */
export function simModelRefusal(
  modelId: string,
): { status: number; code: string; message: string } | undefined {
  let id = modelId;
  const arn = /^arn:aws[a-z-]*:bedrock:[^:]*:\d*:([a-z-]+)\/(.+)$/.exec(modelId);
  if (arn) {
    // Application profiles and provisioned models are the account's own: the fake cannot know them.
    if (arn[1] !== 'inference-profile' && arn[1] !== 'foundation-model') return undefined;
    id = arn[2] ?? '';
  }
  const geo = /^(global|us|eu|jp|apac|au|ca|us-gov)\.(.+)$/.exec(id);
  const base = geo ? (geo[2] ?? '') : id;
  const model = SIM_BEDROCK_MODELS[base];
  const invalid = { status: 400, code: 'ValidationException', message: INVALID_MODEL };
  if (!model) return invalid;
  if (model.lifecycle === 'EOL') {
    return model.eolAs === 'eol'
      ? { status: 404, code: 'ResourceNotFoundException', message: EOL_MODEL }
      : invalid;
  }
  if (geo && !model.profiles.includes(geo[1] ?? '')) return invalid;
  if (!geo && !model.onDemand) {
    return {
      status: 400,
      code: 'ValidationException',
      message: `Invocation of model ID ${base} with on-demand throughput isn’t supported. Retry your request with the ID or ARN of an inference profile that contains this model.`,
    };
  }
  return undefined;
}

/** Scripted Converse answers: queued answers first, then the script; neither → unexpected call. */
export class BedrockScripts {
  readonly calls: ConverseRequest[] = [];
  private readonly queue: BedrockAnswer[] = [];
  private fn: BedrockScript | undefined;

  script(fn: BedrockScript | undefined): void {
    this.fn = fn;
  }

  enqueue(...answers: BedrockAnswer[]): void {
    this.queue.push(...answers);
  }

  get pending(): number {
    return this.queue.length;
  }

  reset(): void {
    this.queue.length = 0;
    this.fn = undefined;
    this.calls.length = 0;
  }

  /** @internal */
  async next(request: ConverseRequest): Promise<BedrockAnswer | undefined> {
    const queued = this.queue.shift();
    if (queued) return queued;
    return this.fn ? await this.fn(request) : undefined;
  }
}

function estimateTokens(value: unknown): number {
  return Math.max(1, Math.ceil(JSON.stringify(value ?? '').length / 4));
}

export function createBedrockHandler(ctx: Pick<AwsContext, 'bedrock' | 'timers'>) {
  const { bedrock, timers } = ctx;

  async function converse(modelId: string, body: string): Promise<Reply> {
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      throw new AwsError(
        400,
        'ValidationException',
        'Malformed input request, please reformat your input and try again.',
        true,
      );
    }
    if (!isRecord(json) || !Array.isArray(json.messages)) {
      throw new AwsError(
        400,
        'ValidationException',
        'Malformed input request: required key [messages] not found',
        true,
      );
    }
    const messages = json.messages;
    const first = messages[0];
    if (!isRecord(first) || first.role !== 'user') {
      throw new AwsError(
        400,
        'ValidationException',
        'A conversation must start with a user message. Try again with a conversation that starts with a user message.',
      );
    }
    const refused = simModelRefusal(modelId);
    if (refused) throw new AwsError(refused.status, refused.code, refused.message);
    const request: ConverseRequest = {
      modelId,
      messages,
      system: Array.isArray(json.system) ? json.system : undefined,
      toolConfig: isRecord(json.toolConfig) ? (json.toolConfig as ConverseRequest['toolConfig']) : undefined,
      inferenceConfig: isRecord(json.inferenceConfig) ? json.inferenceConfig : undefined,
      body: json,
    };
    bedrock.calls.push(request);
    let answer: BedrockAnswer | undefined;
    try {
      answer = await bedrock.next(request);
    } catch (e) {
      throw new AwsError(
        500,
        'InternalServerException',
        `the Bedrock script threw: ${(e as Error).message}`,
        true,
      );
    }
    if (
      !answer ||
      (answer.toolUse === undefined && answer.text === undefined && answer.error === undefined)
    ) {
      throw new AwsError(
        500,
        'InternalServerException',
        'unexpected Converse call: no scripted or queued answer',
        true,
      );
    }
    if (answer.delayMs) await timers.wait(answer.delayMs);
    if (answer.error) {
      const status = answer.status ?? BEDROCK_ERROR_STATUS[answer.error] ?? 400;
      throw new AwsError(status, answer.error, answer.message ?? `${answer.error} (scripted)`);
    }
    const content: unknown[] = [];
    if (answer.text !== undefined) content.push({ text: answer.text });
    if (answer.toolUse) {
      const tools = request.toolConfig?.tools ?? [];
      const declared = tools.some(
        (t) => isRecord(t) && isRecord(t.toolSpec) && t.toolSpec.name === answer.toolUse?.name,
      );
      if (!declared) {
        throw new AwsError(
          500,
          'InternalServerException',
          `scripted toolUse '${answer.toolUse.name}' is not in the request's toolConfig`,
          true,
        );
      }
      content.push({
        toolUse: {
          toolUseId: answer.toolUse.toolUseId ?? `tooluse_${randomBytes(11).toString('base64url')}`,
          name: answer.toolUse.name,
          input: answer.toolUse.input,
        },
      });
    }
    const inputTokens =
      answer.usage?.inputTokens ?? estimateTokens([request.system, messages, request.toolConfig]);
    const outputTokens = answer.usage?.outputTokens ?? estimateTokens(content);
    const response = {
      output: { message: { role: 'assistant', content } },
      stopReason: answer.stopReason ?? (answer.toolUse ? 'tool_use' : 'end_turn'),
      usage: { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens },
      metrics: { latencyMs: answer.delayMs ?? 1 },
    };
    return { status: 200, contentType: JSON_REST, body: JSON.stringify(response) };
  }
  return converse;
}

/**
 * The Bedrock Converse adapter of the LlmClient port: the only file that imports the Bedrock SDK.
 * The answer is forced through a tool (`classify_gpu_fault`), so it arrives structured; whatever arrives
 * is still handed back untrusted for classify/llm/validate.ts to judge.
 */
import {
  BedrockRuntimeClient,
  ConverseCommand,
  type ConverseCommandInput,
  type ConverseCommandOutput,
} from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { Logger } from 'pino';
import {
  type LlmClient,
  LlmError,
  LlmModelUnavailableError,
  type LlmRequest,
  type LlmResponse,
  LlmThrottledError,
  LlmTimeoutError,
} from '../classify/llm/port.js';
import { explanationMaxChars } from '../classify/llm/validate.js';
import { defaultBedrockModelIdFor } from '../config/bedrock-model.js';
import { backoffDelay } from '../domain/backoff.js';
import { type Clock, systemClock } from '../domain/clock.js';
import { Severities } from '../domain/finding.js';

export const classifyToolName = 'classify_gpu_fault';
/** The default model in the default region (us-east-1); see config/bedrock-model.ts for the others. */
export const defaultBedrockModelId = defaultBedrockModelIdFor('us-east-1');
export const defaultLlmTimeoutMs = 20_000;

export interface BedrockClassifierClientOptions {
  region: string;
  modelId: string;
  /** A fake's URL in tests; otherwise AWS_ENDPOINT_URL_BEDROCK_RUNTIME or the regional endpoint. */
  endpoint?: string;
  /** Total budget per classification, retries and backoff included (LLM_TIMEOUT). */
  timeoutMs?: number;
  /** Retries after the first attempt, for throttling and 5xx only. Default 3. */
  maxRetries?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  maxTokens?: number;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Inject a configured client (tests, custom credentials); the default one retries nothing itself. */
  client?: BedrockRuntimeClient;
  logger?: Logger;
  random?: () => number;
  /** Time for the budget and the waits between retries. */
  clock?: Clock;
}

/** The tool the model must call. The enum is the node's offered categories; validation re-checks anyway. */
export function classifyTool(categories: string[]) {
  return {
    toolSpec: {
      name: classifyToolName,
      description: 'Report the single category that best explains the GPU evidence of one node.',
      inputSchema: {
        json: {
          type: 'object',
          properties: {
            category: { type: 'string', enum: categories },
            severity: { type: 'string', enum: [...Severities] },
            gpu: { type: ['integer', 'null'], description: 'GPU index the fault is on, or null' },
            xid: { type: ['integer', 'null'], description: 'XID code the fault is about, or null' },
            confidence: { type: 'number', minimum: 0, maximum: 1 },
            explanation: { type: 'string', maxLength: explanationMaxChars },
          },
          required: ['category', 'severity', 'gpu', 'xid', 'confidence', 'explanation'],
          additionalProperties: false,
        },
      },
    },
  };
}

export function converseInput(modelId: string, request: LlmRequest, maxTokens = 400): ConverseCommandInput {
  return {
    modelId,
    system: [{ text: request.system }],
    messages: [{ role: 'user', content: [{ text: request.user }] }],
    inferenceConfig: { temperature: 0, maxTokens },
    toolConfig: {
      tools: [classifyTool(request.categories)],
      toolChoice: { tool: { name: classifyToolName } },
    },
  };
}

/** The tool input when the model called the tool; its text otherwise (validation rejects what is not JSON). */
export function answerOf(output: ConverseCommandOutput): unknown {
  const content = output.output?.message?.content ?? [];
  const tool = content.find((c) => c.toolUse?.name === classifyToolName) ?? content.find((c) => c.toolUse);
  if (tool?.toolUse) return tool.toolUse.input;
  const text = content
    .map((c) => c.text)
    .filter((t): t is string => typeof t === 'string')
    .join('');
  return text === '' ? undefined : text;
}

const throttleNames = new Set(['ThrottlingException', 'TooManyRequestsException']);
const transientNames = new Set([
  'ServiceUnavailableException',
  'InternalServerException',
  'ModelNotReadyException',
  'ModelTimeoutException',
]);

function errorStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null || !('$metadata' in err)) return undefined;
  const meta = (err as { $metadata?: { httpStatusCode?: number } }).$metadata;
  return meta?.httpStatusCode;
}

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : 'Error';
}

export function isThrottle(err: unknown): boolean {
  return throttleNames.has(errorName(err)) || errorStatus(err) === 429;
}

/**
 * Bedrock's answers that mean "this model id will never work here": an unknown or retired id
 * (ValidationException "The provided model identifier is invalid."), an end-of-life model
 * (ResourceNotFoundException "This model version has reached the end of its life"), a profile-only model
 * called by its bare id, or a model the account has no access to. Other ValidationExceptions (a bad
 * request) are not about the model and stay ordinary errors.
 */
export function isModelUnavailable(err: unknown): boolean {
  const name = errorName(err);
  const message = err instanceof Error ? err.message : String(err);
  if (name === 'ResourceNotFoundException') return /model|end of its life/i.test(message);
  if (name === 'ValidationException')
    return /model identifier is invalid|end of its life|on-demand throughput isn.t supported|model .*(?:not supported|legacy|retired)/i.test(
      message,
    );
  if (name === 'AccessDeniedException') return /access to the model/i.test(message);
  return false;
}

export function isRetryable(err: unknown): boolean {
  const status = errorStatus(err);
  return isThrottle(err) || transientNames.has(errorName(err)) || (status !== undefined && status >= 500);
}

export function createBedrockClassifierClient(options: BedrockClassifierClientOptions): LlmClient {
  const timeoutMs = options.timeoutMs ?? defaultLlmTimeoutMs;
  const maxRetries = options.maxRetries ?? 3;
  const baseDelayMs = options.baseDelayMs ?? 250;
  const maxDelayMs = options.maxDelayMs ?? 4_000;
  const random = options.random ?? Math.random;
  const clock = options.clock ?? systemClock;
  const logger = options.logger;
  const client =
    options.client ??
    new BedrockRuntimeClient({
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      // Retries are ours, so that backoff counts against one time budget; HTTP/1.1 serves Converse fine.
      maxAttempts: 1,
      requestHandler: new NodeHttpHandler(),
    });

  async function attempt(request: LlmRequest, remainingMs: number): Promise<ConverseCommandOutput> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), remainingMs);
    try {
      return await client.send(
        new ConverseCommand(converseInput(options.modelId, request, options.maxTokens)),
        {
          abortSignal: controller.signal,
        },
      );
    } catch (err) {
      if (controller.signal.aborted) {
        throw new LlmTimeoutError(`Bedrock did not answer within ${timeoutMs} ms`, { cause: err });
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    async classify(request: LlmRequest): Promise<LlmResponse> {
      const started = clock.now();
      const deadline = started + timeoutMs;
      for (let retry = 0; ; retry++) {
        try {
          const output = await attempt(request, Math.max(1, deadline - clock.now()));
          return {
            input: answerOf(output),
            usage: {
              inputTokens: output.usage?.inputTokens ?? 0,
              outputTokens: output.usage?.outputTokens ?? 0,
            },
            latencyMs: clock.now() - started,
          };
        } catch (err) {
          if (err instanceof LlmError) throw err;
          const name = errorName(err);
          const message = err instanceof Error ? err.message : String(err);
          if (isModelUnavailable(err)) {
            throw new LlmModelUnavailableError(
              `Bedrock refuses model ${options.modelId}: ${name}: ${message}`,
              options.modelId,
              { cause: err },
            );
          }
          if (!isRetryable(err)) {
            throw new LlmError(`Bedrock Converse failed: ${name}: ${message}`, { cause: err });
          }
          // Full jitter: many replicas throttled at once must not retry in lockstep.
          const delay = backoffDelay(retry, {
            baseMs: baseDelayMs,
            capMs: maxDelayMs,
            jitter: 'full',
            random,
          });
          const giveUp = retry >= maxRetries || clock.now() + delay >= deadline;
          logger?.warn({ err: name, retry, delayMs: delay, giveUp }, 'bedrock call failed, retryable');
          if (giveUp) {
            const text = `Bedrock Converse gave up after ${retry + 1} attempt(s): ${name}`;
            throw isThrottle(err)
              ? new LlmThrottledError(text, { cause: err })
              : new LlmError(text, { cause: err });
          }
          await clock.sleep(delay);
        }
      }
    },
  };
}

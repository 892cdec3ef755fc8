/**
 * The Bedrock adapter with the real SDK client against the simulator's Converse fake: wire format,
 * structured answers, retries with backoff on throttling, and the per-call time budget.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LlmError, type LlmRequest, LlmThrottledError, LlmTimeoutError } from '../classify/llm/port.js';
import { type SimAws, startSimAws } from '../sim/aws-server.js';
import type { CloudEffects } from '../sim/cloud-effects.js';
import { classifyToolName, createBedrockClassifierClient } from './bedrock.js';

const noInstances: CloudEffects = {
  describeInstances: () => [],
  rebootInstance: () => false,
  terminateInstance: () => undefined,
};

const request: LlmRequest = {
  system: 'classify it',
  user: 'node n1: <untrusted_log_x>Xid 79</untrusted_log_x>',
  categories: ['XID_CRITICAL_79', 'HEALTHY'],
};

let sim: SimAws;
beforeAll(async () => {
  sim = await startSimAws(noInstances);
});
afterEach(() => {
  sim.log.assertNoUnexpected();
  sim.bedrock.reset();
  sim.log.clear();
});
afterAll(() => sim.close());

const client = (opts: { timeoutMs?: number; maxRetries?: number } = {}) =>
  createBedrockClassifierClient({
    region: 'us-east-1',
    modelId: 'us.anthropic.claude-sonnet-4-6',
    endpoint: sim.url,
    credentials: { accessKeyId: 'AKIDSIM', secretAccessKey: 'sim' },
    baseDelayMs: 5,
    maxDelayMs: 20,
    ...opts,
  });

describe('createBedrockClassifierClient', () => {
  it('sends a forced tool call at temperature 0 and returns the tool input with usage', async () => {
    const input = {
      category: 'XID_CRITICAL_79',
      severity: 'critical',
      gpu: 3,
      xid: 79,
      confidence: 0.97,
      explanation: 'off the bus',
    };
    sim.bedrock.enqueue({
      toolUse: { name: classifyToolName, input },
      usage: { inputTokens: 812, outputTokens: 44 },
    });

    const out = await client().classify(request);

    expect(out.input).toEqual(input);
    expect(out.usage).toEqual({ inputTokens: 812, outputTokens: 44 });
    const sent = sim.bedrock.calls[0];
    expect(sent?.modelId).toBe('us.anthropic.claude-sonnet-4-6');
    expect(sent?.system).toEqual([{ text: 'classify it' }]);
    expect(sent?.inferenceConfig).toMatchObject({ temperature: 0, maxTokens: 400 });
    expect(sent?.toolConfig?.toolChoice).toEqual({ tool: { name: classifyToolName } });
    expect(sent?.toolConfig?.tools?.[0]).toMatchObject({
      toolSpec: {
        name: classifyToolName,
        inputSchema: {
          json: {
            properties: { category: { enum: ['XID_CRITICAL_79', 'HEALTHY'] } },
            additionalProperties: false,
          },
        },
      },
    });
  });

  it('returns plain text when the model ignores the tool', async () => {
    sim.bedrock.enqueue({ text: 'Sorry, I think it is fine.' });
    expect((await client().classify(request)).input).toBe('Sorry, I think it is fine.');
  });

  it('retries throttling with backoff and succeeds', async () => {
    sim.bedrock.enqueue(
      { error: 'ThrottlingException' },
      { error: 'ServiceUnavailableException' },
      { toolUse: { name: classifyToolName, input: { category: 'HEALTHY' } } },
    );
    const out = await client().classify(request);
    expect(out.input).toEqual({ category: 'HEALTHY' });
    expect(sim.bedrock.calls).toHaveLength(3);
  });

  it('gives up on persistent throttling after its retries with LlmThrottledError', async () => {
    sim.bedrock.script(() => ({ error: 'ThrottlingException' }));
    await expect(client({ maxRetries: 2 }).classify(request)).rejects.toBeInstanceOf(LlmThrottledError);
    expect(sim.bedrock.calls).toHaveLength(3);
  });

  it('does not retry a client error', async () => {
    sim.bedrock.enqueue({ error: 'ValidationException', message: 'bad model id' });
    const err = await client()
      .classify(request)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlmError);
    expect(err).not.toBeInstanceOf(LlmThrottledError);
    expect((err as Error).message).toContain('ValidationException');
    expect(sim.bedrock.calls).toHaveLength(1);
  });

  it('aborts an answer that arrives after the timeout with LlmTimeoutError', async () => {
    sim.bedrock.enqueue({ toolUse: { name: classifyToolName, input: {} }, delayMs: 5_000 });
    await expect(client({ timeoutMs: 200 }).classify(request)).rejects.toBeInstanceOf(LlmTimeoutError);
    expect(sim.bedrock.calls).toHaveLength(1);
  });
});

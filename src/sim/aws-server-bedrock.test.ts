/** Bedrock Runtime Converse against the simulated AWS endpoint: scripted answers, refused model ids. */
import { BedrockRuntimeClient, ConverseCommand } from '@aws-sdk/client-bedrock-runtime';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { awsClientConfig } from '../../test/support/aws.js';
import { RecordingEffects, resetSimAws } from '../../test/support/sim-aws-effects.js';
import { type SimAws, startSimAws } from './aws-server.js';

let effects: RecordingEffects;
let aws: SimAws;

beforeAll(async () => {
  effects = new RecordingEffects();
  aws = await startSimAws(effects);
});
afterAll(async () => {
  await aws.close();
});
beforeEach(() => {
  resetSimAws(aws, effects);
});
afterEach(() => {
  aws.log.assertNoUnexpected();
});

describe('Bedrock Runtime Converse (REST-JSON, scriptable)', () => {
  const modelId = 'us.anthropic.claude-sonnet-4-5-20250929-v1:0';
  const bedrock = (requestTimeout?: number) =>
    new BedrockRuntimeClient(awsClientConfig(aws.url, { requestTimeout }));
  const classify = () =>
    new ConverseCommand({
      modelId,
      system: [{ text: 'Classify GPU faults.' }],
      messages: [{ role: 'user', content: [{ text: 'Xid 48 on GPU 2' }] }],
      inferenceConfig: { maxTokens: 512, temperature: 0 },
      toolConfig: {
        tools: [
          {
            toolSpec: {
              name: 'report_finding',
              inputSchema: { json: { type: 'object', properties: { severity: { type: 'string' } } } },
            },
          },
        ],
        toolChoice: { tool: { name: 'report_finding' } },
      },
    });

  it('returns a scripted toolUse in the real Converse shape; the model id is URL-encoded in the path', async () => {
    aws.bedrock.script((req) => ({
      toolUse: { name: 'report_finding', input: { severity: 'critical', seen: req.modelId } },
    }));
    const out = await bedrock().send(classify());
    expect(out.stopReason).toBe('tool_use');
    expect(out.output?.message?.role).toBe('assistant');
    const toolUse = out.output?.message?.content?.[0]?.toolUse;
    expect(toolUse?.name).toBe('report_finding');
    expect(toolUse?.input).toEqual({ severity: 'critical', seen: modelId });
    expect(toolUse?.toolUseId).toMatch(/^tooluse_/);
    expect(out.usage?.totalTokens).toBe((out.usage?.inputTokens ?? 0) + (out.usage?.outputTokens ?? 0));
    expect(aws.bedrock.calls[0]).toMatchObject({
      modelId,
      system: [{ text: 'Classify GPU faults.' }],
      inferenceConfig: { maxTokens: 512, temperature: 0 },
    });
    const raw = aws.log.find('Converse')[0];
    expect(raw?.service).toBe('bedrock');
    expect(raw?.path).toBe('/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse');
    expect(JSON.parse(raw?.body ?? '')).not.toHaveProperty('modelId');
  });

  it('decodes an inference-profile ARN (with a slash) from the path', async () => {
    const arn = 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-6';
    aws.bedrock.enqueue({ text: 'ok' });
    await bedrock().send(
      new ConverseCommand({ modelId: arn, messages: [{ role: 'user', content: [{ text: 'hi' }] }] }),
    );
    expect(aws.bedrock.calls.map((c) => c.modelId)).toEqual([arn]);
    expect(aws.log.find('Converse')[0]?.path).toContain('inference-profile%2F');
  });

  // Reality first: Bedrock refuses a model id it does not serve, before any model runs (real-clusters.md,
  // "Amazon Bedrock models"). The fake's scripts never see such a call.
  it.each([
    [
      'Claude 3.7 Sonnet, end of life 2026-04-28',
      'us.anthropic.claude-3-7-sonnet-20250219-v1:0',
      400,
      'ValidationException',
      /model identifier is invalid/,
    ],
    [
      'Claude 3.7 Sonnet, bare id',
      'anthropic.claude-3-7-sonnet-20250219-v1:0',
      400,
      'ValidationException',
      /model identifier is invalid/,
    ],
    [
      'Claude 3.5 Sonnet, end of life',
      'anthropic.claude-3-5-sonnet-20240620-v1:0',
      404,
      'ResourceNotFoundException',
      /end of its life/,
    ],
    [
      'an id Bedrock never had',
      'us.anthropic.claude-nonexistent-v9',
      400,
      'ValidationException',
      /model identifier is invalid/,
    ],
    [
      'a geography without a profile of the model',
      'apac.anthropic.claude-sonnet-4-6',
      400,
      'ValidationException',
      /model identifier is invalid/,
    ],
    [
      'a profile-only model called on demand',
      'anthropic.claude-sonnet-4-6',
      400,
      'ValidationException',
      /on-demand throughput isn.t supported/,
    ],
  ])('refuses %s', async (_, id, status, name, message) => {
    aws.bedrock.enqueue({ text: 'never served' });
    const err = await bedrock()
      .send(new ConverseCommand({ modelId: id, messages: [{ role: 'user', content: [{ text: 'hi' }] }] }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name, $metadata: { httpStatusCode: status } });
    expect((err as Error).message).toMatch(message);
    expect(aws.bedrock.calls).toEqual([]);
    expect(aws.bedrock.pending).toBe(1);
    aws.bedrock.reset();
  });

  it.each([
    ['us.anthropic.claude-sonnet-4-6'],
    ['eu.anthropic.claude-sonnet-4-6'],
    ['jp.anthropic.claude-sonnet-4-6'],
    ['global.anthropic.claude-sonnet-4-6'],
    ['apac.anthropic.claude-opus-4-6-v1'],
    ['arn:aws:bedrock:eu-west-1:123456789012:application-inference-profile/abc123'],
  ])('serves the active model id %s', async (id) => {
    aws.bedrock.enqueue({ text: 'ok' });
    const out = await bedrock().send(
      new ConverseCommand({ modelId: id, messages: [{ role: 'user', content: [{ text: 'hi' }] }] }),
    );
    expect(out.output?.message?.content).toEqual([{ text: 'ok' }]);
  });

  it('serves queued answers in order before the script, text answers end the turn', async () => {
    aws.bedrock.enqueue({ text: 'first' }, { text: 'second' });
    const a = await bedrock().send(classify());
    const b = await bedrock().send(classify());
    expect(a.output?.message?.content).toEqual([{ text: 'first' }]);
    expect(a.stopReason).toBe('end_turn');
    expect(b.output?.message?.content).toEqual([{ text: 'second' }]);
    expect(aws.bedrock.pending).toBe(0);
  });

  it('surfaces a scripted ThrottlingException by name with status 429', async () => {
    aws.bedrock.enqueue({ error: 'ThrottlingException', message: 'Too many requests' });
    const err = await bedrock()
      .send(classify())
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ThrottlingException', $metadata: { httpStatusCode: 429 } });
    expect((err as Error).message).toBe('Too many requests');
  });

  it('answers late, so a client requestTimeout fires first', async () => {
    aws.bedrock.enqueue({ text: 'too late', delayMs: 2000 });
    const err = await bedrock(100)
      .send(classify())
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'TimeoutError' });
  });

  it('fails loudly on a Converse call nobody scripted', async () => {
    const err = await bedrock()
      .send(classify())
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ $metadata: { httpStatusCode: 500 } });
    expect(aws.log.unexpected.map((r) => r.operation)).toEqual(['Converse']);
    aws.log.clear();
  });

  it('refuses a scripted toolUse for a tool the request did not declare', async () => {
    aws.bedrock.enqueue({ toolUse: { name: 'reboot_everything', input: {} } });
    const err = await bedrock()
      .send(classify())
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ $metadata: { httpStatusCode: 500 } });
    expect(aws.log.unexpected).toHaveLength(1);
    aws.log.clear();
  });
});

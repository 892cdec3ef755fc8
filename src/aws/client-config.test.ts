import { describe, expect, it } from 'vitest';
import { awsClientConfig, classifyAwsError } from './client-config.js';

function sdkError(name: string, status?: number): Error {
  const e = new Error(`${name} happened`);
  e.name = name;
  return Object.assign(e, status === undefined ? {} : { $metadata: { httpStatusCode: status } });
}

describe('classifyAwsError', () => {
  it.each([
    ['InternalError', 500, true],
    ['ServiceUnavailable', 503, true],
    ['Throttling', 400, true],
    ['TooManyRequestsException', 429, true],
    ['RequestTimeout', 408, true],
    ['TimeoutError', undefined, true],
    ['ECONNREFUSED', undefined, true],
    ['AuthorizationError', 403, true],
    ['ResourceNotFoundException', 404, true],
    ['InvalidParameter', 400, false],
    ['InvalidParameterValue', 400, false],
    ['RequestTooLargeException', 413, false],
  ] as const)('%s (HTTP %s) retryable: %s', (name, status, retryable) => {
    const f = classifyAwsError(sdkError(name, status));
    expect(f).toMatchObject({ retryable, code: name });
    if (status !== undefined) expect(f.status).toBe(status);
  });

  it('never throws on odd input', () => {
    expect(classifyAwsError(undefined)).toMatchObject({ retryable: true, code: 'Error' });
    expect(classifyAwsError('boom')).toMatchObject({ retryable: true, message: 'boom' });
  });
});

describe('awsClientConfig', () => {
  it('passes only what is given, with timeouts on the handler', () => {
    const c = awsClientConfig({ region: 'eu-west-1', maxAttempts: 1 });
    expect(c.region).toBe('eu-west-1');
    expect(c.maxAttempts).toBe(1);
    expect('endpoint' in c).toBe(false);
    expect(awsClientConfig().maxAttempts).toBe(3);
  });
});

/**
 * Options shared by the AWS SDK v3 clients gpu-medic builds. Endpoints are deliberately absent: the SDK
 * reads AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> itself (that is how the simulator is reached), so
 * only an explicit `endpoint` (tests) is passed through. What we add is bounded time: a connection and a
 * request timeout, so a hung endpoint becomes an error the caller can retry instead of a stuck loop.
 */
import { NodeHttpHandler } from '@smithy/node-http-handler';

export const DEFAULT_CONNECTION_TIMEOUT_MS = 3_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

export interface AwsClientOptions {
  region?: string;
  /** Attempts per call including the first; the SDK's own default is 3. */
  maxAttempts?: number;
  connectionTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** Only for tests and explicit overrides; AWS_ENDPOINT_URL_<SERVICE> is read by the SDK. */
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

export interface AwsClientConfig {
  region?: string;
  maxAttempts: number;
  requestHandler: NodeHttpHandler;
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

export function awsClientConfig(options: AwsClientOptions = {}): AwsClientConfig {
  const config: AwsClientConfig = {
    maxAttempts: options.maxAttempts ?? 3,
    // Without throwOnRequestTimeout, @smithy/node-http-handler 4.x only warns when requestTimeout passes.
    requestHandler: new NodeHttpHandler({
      connectionTimeout: options.connectionTimeoutMs ?? DEFAULT_CONNECTION_TIMEOUT_MS,
      requestTimeout: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      throwOnRequestTimeout: true,
    }),
  };
  if (options.region !== undefined) config.region = options.region;
  if (options.endpoint !== undefined) config.endpoint = options.endpoint;
  if (options.credentials !== undefined) config.credentials = options.credentials;
  return config;
}

/** What a failed AWS call tells a caller deciding whether to try again. */
export interface AwsFailure {
  retryable: boolean;
  status?: number;
  code: string;
  message: string;
}

const THROTTLING = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'ProvisionedThroughputExceededException',
  'SlowDown',
  'EC2ThrottledException',
]);

/**
 * Configuration mistakes (missing permission, expired credentials, a topic or function not created yet):
 * an operator fixes them and the queued messages must still go out, so they are retried, not dropped.
 */
const FIXABLE = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'AuthorizationError',
  'AuthorizationErrorException',
  'ExpiredToken',
  'ExpiredTokenException',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
  'MissingAuthenticationToken',
  'CredentialsProviderError',
  'NotFound',
  'NotFoundException',
  'ResourceNotFoundException',
  'ResourceNotReadyException',
  'ResourceConflictException',
  'KMSThrottlingException',
  'KMSDisabledException',
  'KMSNotFoundException',
  'KMSInvalidStateException',
  'KMSAccessDeniedException',
  'EC2UnexpectedException',
  'EFSIOException',
  'SubnetIPAddressLimitReachedException',
  'ENILimitReachedException',
]);

/** A throttling answer: a throttling error code, or HTTP 429. */
export function isThrottling(code: string, status?: number): boolean {
  return THROTTLING.has(code) || status === 429;
}

function record(e: unknown): Record<string, unknown> {
  return e !== null && typeof e === 'object' ? (e as Record<string, unknown>) : {};
}

/**
 * Classifies an SDK error: throttling, timeouts, network errors, 5xx, 408/429 and fixable configuration
 * errors are retryable; any other 4xx (validation, payload too large) is not — sending the same request
 * again cannot succeed.
 */
export function classifyAwsError(error: unknown): AwsFailure {
  const e = record(error);
  const code = typeof e.name === 'string' ? e.name : 'Error';
  const message = typeof e.message === 'string' && e.message !== '' ? e.message : String(error);
  const meta = record(e.$metadata);
  const status = typeof meta.httpStatusCode === 'number' ? meta.httpStatusCode : undefined;
  const failure: AwsFailure = { retryable: true, code, message };
  if (status !== undefined) failure.status = status;
  if (status === undefined || status >= 500 || status === 408 || status === 429) return failure;
  if (THROTTLING.has(code) || FIXABLE.has(code) || status === 401 || status === 403) return failure;
  if (record(e.$retryable).throttling === true) return failure;
  failure.retryable = false;
  return failure;
}

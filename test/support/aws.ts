/**
 * Client configuration for the real AWS SDK v3 clients against the simulated AWS endpoint.
 * The SDK is imported only here (tests) and in adapters, never in src/sim.
 */
import { NodeHttpHandler } from '@smithy/node-http-handler';

export interface SimAwsClientConfig {
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  maxAttempts: number;
  requestHandler: NodeHttpHandler;
}

/**
 * `requestTimeout` makes the request fail with a TimeoutError once it passes.
 * `requestHandler` is an HTTP/1.1 handler because the Bedrock Runtime client defaults to HTTP/2,
 * which the plain loopback fake does not serve; `maxAttempts: 1` keeps injected faults visible.
 */
export function awsClientConfig(
  url: string,
  opts: { requestTimeout?: number; maxAttempts?: number; region?: string } = {},
): SimAwsClientConfig {
  return {
    endpoint: url,
    region: opts.region ?? 'us-east-1',
    credentials: { accessKeyId: 'AKIDSIM', secretAccessKey: 'sim' },
    maxAttempts: opts.maxAttempts ?? 1,
    // Without throwOnRequestTimeout, @smithy/node-http-handler 4.x only logs a warning when
    // requestTimeout passes and keeps waiting for the answer.
    requestHandler: new NodeHttpHandler(
      opts.requestTimeout === undefined
        ? {}
        : { requestTimeout: opts.requestTimeout, throwOnRequestTimeout: true },
    ),
  };
}

/**
 * DCGM_SOURCE=prometheus, built from the configuration: the HTTP client, SigV4 for an AMP workspace (the SDK
 * code loaded only when signing is on), the policy's thresholds in the queries.
 */
import type { RequestSigner } from '../aws/aps-signer.js';
import type { Config } from '../config/config.js';
import { createPrometheusClient, type PrometheusClient } from './prometheus-client.js';
import { createPrometheusCollector } from './prometheus-source.js';

function lazyApsSigner(region: string): RequestSigner {
  let signer: Promise<RequestSigner> | undefined;
  return async (req) => {
    signer ??= import('../aws/aps-signer.js').then((m) => m.createApsSigner({ region }));
    return (await signer)(req);
  };
}

export function createPrometheusSourceCollector(
  config: Config,
): ReturnType<typeof createPrometheusCollector> & { client: PrometheusClient } {
  const prom = config.dcgm.prometheus;
  if (!prom) throw new Error('DCGM_SOURCE=prometheus needs PROMETHEUS_URL');
  const client = createPrometheusClient({
    baseUrl: prom.url,
    ...(prom.sigv4Region ? { sign: lazyApsSigner(prom.sigv4Region) } : {}),
  });
  const c = config.policy.classification;
  const collector = createPrometheusCollector({
    port: client,
    thresholds: {
      sbeStormThreshold: c.sbeStormThreshold,
      nvlinkErrorThreshold: c.nvlinkErrorThreshold,
      thermalWarningC: c.thermalWarningC,
    },
    timeoutMs: prom.timeoutSeconds * 1000,
  });
  return Object.assign(collector, { client });
}

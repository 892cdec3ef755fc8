/**
 * EKS node auto repair settings (DescribeNodegroup `nodeRepairConfig`) on the real AWS SDK v3.
 * The only module that imports @aws-sdk/client-eks, and only at the first ask: the port exists only when
 * auto repair is `detect`, yet a static import would load the SDK into every process.
 *
 * Asked once per node group and remembered: for `ttlMs` (default one hour, so a setting changed in the
 * console is seen without a restart); an answer EKS could not give (permissions, network) is remembered for
 * `failureTtlMs` (default five minutes) so a missing eks:DescribeNodegroup permission costs one call and one
 * warning per group, not one per fault. Concurrent asks for one group share one call.
 */
import type { EKSClient } from '@aws-sdk/client-eks';
import type { Logger } from 'pino';
import type { AutoRepairPort, NodeRepairConfig } from '../remediate/ports.js';
import { awsClientConfig, classifyAwsError } from './client-config.js';

export interface EksAutoRepairOptions {
  region: string;
  clusterName: string;
  /** Only for tests and explicit overrides: the SDK reads AWS_ENDPOINT_URL(_EKS) itself. */
  endpoint?: string;
  maxAttempts?: number;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  ttlMs?: number;
  failureTtlMs?: number;
  now?: () => number;
  logger?: Logger;
}

/** EKS could not say (the caller treats the group's auto repair as unknown). */
export class EksApiError extends Error {
  override readonly name = 'EksApiError';
  constructor(
    message: string,
    readonly code: string,
    readonly nodegroup: string,
  ) {
    super(message);
  }
}

type Cached = { at: number; value: NodeRepairConfig | undefined } | { at: number; error: EksApiError };

export function createEksAutoRepairPort(opts: EksAutoRepairOptions): AutoRepairPort {
  const config = awsClientConfig({
    region: opts.region,
    ...(opts.endpoint !== undefined ? { endpoint: opts.endpoint } : {}),
    ...(opts.maxAttempts !== undefined ? { maxAttempts: opts.maxAttempts } : {}),
    ...(opts.credentials !== undefined ? { credentials: opts.credentials } : {}),
  });
  let loading: Promise<{ eks: EKSClient; Eks: typeof import('@aws-sdk/client-eks') }> | undefined;
  /** The SDK client, built at the first ask; a failed load is retried by the next. */
  const sdk = () =>
    (loading ??= import('@aws-sdk/client-eks').then(
      (Eks) => ({ eks: new Eks.EKSClient(config), Eks }),
      (e: unknown) => {
        loading = undefined;
        throw e;
      },
    ));
  const ttl = opts.ttlMs ?? 3_600_000;
  const failureTtl = opts.failureTtlMs ?? 300_000;
  const now = opts.now ?? Date.now;
  const cache = new Map<string, Cached>();
  const inFlight = new Map<string, Promise<NodeRepairConfig | undefined>>();

  async function ask(nodegroup: string): Promise<NodeRepairConfig | undefined> {
    try {
      const { eks, Eks } = await sdk();
      const out = await eks.send(
        new Eks.DescribeNodegroupCommand({ clusterName: opts.clusterName, nodegroupName: nodegroup }),
      );
      // Absent nodeRepairConfig: the group was created without it, and auto repair is off by default.
      const value = { enabled: out.nodegroup?.nodeRepairConfig?.enabled === true };
      cache.set(nodegroup, { at: now(), value });
      opts.logger?.info({ nodegroup, autoRepair: value.enabled }, 'EKS node auto repair setting read');
      return value;
    } catch (e) {
      const f = classifyAwsError(e);
      if (f.code === 'ResourceNotFoundException') {
        // Not a managed node group EKS knows (a self-managed group wearing the label): no auto repair.
        cache.set(nodegroup, { at: now(), value: undefined });
        return undefined;
      }
      const error = new EksApiError(
        `DescribeNodegroup ${opts.clusterName}/${nodegroup} failed: ${f.code}${f.status !== undefined ? ` (HTTP ${f.status})` : ''}: ${f.message}`,
        f.code,
        nodegroup,
      );
      cache.set(nodegroup, { at: now(), error });
      opts.logger?.warn(
        { nodegroup, code: f.code, err: f.message },
        'cannot read EKS node auto repair setting; not deferring to it',
      );
      throw error;
    }
  }

  return {
    async nodeRepairOf(nodegroup) {
      const hit = cache.get(nodegroup);
      if (hit && now() - hit.at < ('error' in hit ? failureTtl : ttl)) {
        if ('error' in hit) throw hit.error;
        return hit.value;
      }
      const pending = inFlight.get(nodegroup);
      if (pending) return pending;
      const p = ask(nodegroup).finally(() => inFlight.delete(nodegroup));
      inFlight.set(nodegroup, p);
      return p;
    },
  };
}

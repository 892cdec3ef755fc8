import { writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';

/**
 * A kubeconfig pointing at the simulated API server. Over plain HTTP @kubernetes/client-node only accepts
 * the server with `insecure-skip-tls-verify: true`; over HTTPS the kubeconfig carries the CA that issued the
 * server's certificate (`certificate-authority-data`), as an EKS kubeconfig does, and verification is on.
 */
export interface KubeconfigOptions {
  namespace?: string;
  clusterName?: string;
  token?: string;
  /** PEM of the CA to trust (HTTPS only). */
  caPem?: string;
}

/** The bearer token of the simulator's kubeconfig; the simulated API server refuses any other with 401. */
export const SIM_K8S_TOKEN = 'sim-token';

export function kubeconfigFor(url: string, opts: KubeconfigOptions = {}): string {
  const cluster = opts.clusterName ?? 'sim-cluster';
  const context = {
    cluster,
    user: 'gpu-medic',
    ...(opts.namespace ? { namespace: opts.namespace } : {}),
  };
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: cluster,
        cluster: opts.caPem
          ? { server: url, 'certificate-authority-data': Buffer.from(opts.caPem).toString('base64') }
          : { server: url, 'insecure-skip-tls-verify': true },
      },
    ],
    users: [{ name: 'gpu-medic', user: { token: opts.token ?? SIM_K8S_TOKEN } }],
    contexts: [{ name: cluster, context }],
    'current-context': cluster,
    preferences: {},
  });
}

export async function writeKubeconfig(
  url: string,
  path: string,
  opts: KubeconfigOptions = {},
): Promise<string> {
  await writeFile(path, kubeconfigFor(url, opts), { mode: 0o600 });
  return path;
}

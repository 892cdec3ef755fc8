import { KubeConfig } from '@kubernetes/client-node';

/**
 * KUBECONFIG when given; in a pod without it, the service account; otherwise the user's default kubeconfig.
 * A missing or unreadable file is a start-up error that names the path.
 */
export function loadKubeConfig(kubeconfigPath?: string): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (kubeconfigPath) kc.loadFromFile(kubeconfigPath);
    else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
    else kc.loadFromDefault();
  } catch (error) {
    const where =
      kubeconfigPath ??
      (process.env.KUBERNETES_SERVICE_HOST ? 'the in-cluster service account' : '~/.kube/config');
    throw new Error(`cannot load Kubernetes credentials from ${where}: ${(error as Error).message}`);
  }
  if (!kc.getCurrentCluster()) {
    throw new Error(
      `no current cluster in the kubeconfig (${kubeconfigPath ?? 'default'}): set KUBECONFIG or run in a pod`,
    );
  }
  return kc;
}

/** A failed Kubernetes call, with the HTTP status and the API server's Status reason when there was one. */
export class K8sApiError extends Error {
  override readonly name = 'K8sApiError';
  /** Whether the same call can succeed later: throttling, server errors and no answer at all. */
  readonly retryable: boolean;
  constructor(
    message: string,
    readonly status?: number,
    readonly reason?: string,
  ) {
    super(message);
    this.retryable = status === undefined || status === 429 || status >= 500;
  }
}

/**
 * Every fake in the simulator records what it served and refuses what it does not know, loudly:
 * an unknown request is answered with an error *and* kept in `unexpected`, so a test can fail on it
 * even when the client swallowed the error.
 */
export interface RecordedRequest {
  /** Which fake served it: `k8s`, `ec2`, `autoscaling`, `cloudwatch`, `sns`, `lambda`, `bedrock`, `slack`. */
  service: string;
  method: string;
  /** Path without the query string. */
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** The operation name the fake understood (`patchNode`, `RebootInstances`, `chat.postMessage` …). */
  operation?: string;
  status: number;
  at: number;
}

export class RequestLog {
  readonly requests: RecordedRequest[] = [];
  readonly unexpected: RecordedRequest[] = [];
  /** Keep at most this many requests (the benchmark makes millions). 0 = unbounded. */
  constructor(private readonly limit = 0) {}

  record(r: RecordedRequest): void {
    if (this.limit > 0 && this.requests.length >= this.limit) this.requests.shift();
    this.requests.push(r);
  }

  recordUnexpected(r: RecordedRequest): void {
    this.unexpected.push(r);
    this.record(r);
  }

  operations(service?: string): string[] {
    return this.requests
      .filter((r) => !service || r.service === service)
      .map((r) => r.operation ?? `${r.method} ${r.path}`);
  }

  find(operation: string): RecordedRequest[] {
    return this.requests.filter((r) => r.operation === operation);
  }

  /** Throws listing every request nobody expected. Call it in afterEach. */
  assertNoUnexpected(): void {
    if (this.unexpected.length === 0) return;
    const lines = this.unexpected.map((r) => `  ${r.service}: ${r.method} ${r.path} ${r.body.slice(0, 200)}`);
    throw new Error(
      `the simulator received ${this.unexpected.length} unexpected request(s):\n${lines.join('\n')}`,
    );
  }

  clear(): void {
    this.requests.length = 0;
    this.unexpected.length = 0;
  }
}

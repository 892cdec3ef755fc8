import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export class TimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TimeoutError';
  }
}

export interface GetOptions {
  timeoutMs: number;
  maxBytes: number;
  headers?: Record<string, string>;
}

/**
 * Plain keep-alive GETs, authorised like the client library (kc.applyToHTTPSOptions). Used for the
 * per-node exporter scrapes: the generated API client costs ~2× the CPU per call, which
 * matters at 5,000 scrapes a scan. Credentials are re-applied by `refreshAuth()` (once per scan) so
 * rotating service-account or exec-plugin tokens keep working.
 */
export class RawHttpClient {
  private agent: http.Agent;
  private base: URL | undefined;
  private authHeaders: Record<string, string> = {};
  private tls: https.AgentOptions = {};
  /** The first credentials load, shared by concurrent first requests; retried after a failure. */
  private firstAuth: Promise<void> | undefined;

  constructor(
    private readonly kc: KubeConfig | undefined,
    private readonly maxSockets = 64,
  ) {
    const server = kc?.getCurrentCluster()?.server;
    this.base = server ? new URL(server) : undefined;
    this.agent = this.makeAgent();
  }

  private makeAgent(): http.Agent {
    const opts = { keepAlive: true, maxSockets: this.maxSockets, maxFreeSockets: this.maxSockets };
    return this.base?.protocol === 'https:'
      ? new https.Agent({ ...opts, ...this.tls })
      : new http.Agent(opts);
  }

  /** Re-reads credentials and TLS material from the kubeconfig (token files, exec plugins). */
  async refreshAuth(): Promise<void> {
    if (!this.kc) return;
    await this.track(this.loadAuth());
  }

  /** Remembers a credentials load as the first one unless one is already in flight or done. */
  private track(loading: Promise<void>): Promise<void> {
    if (!this.firstAuth) {
      this.firstAuth = loading;
      loading.catch(() => {
        if (this.firstAuth === loading) this.firstAuth = undefined;
      });
    }
    return loading;
  }

  private async loadAuth(): Promise<void> {
    if (!this.kc) return;
    const opts: https.RequestOptions = { headers: {} };
    await this.kc.applyToHTTPSOptions(opts);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.headers ?? {})) if (typeof v === 'string') headers[k] = v;
    if (opts.auth) headers.Authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
    this.authHeaders = headers;
    const cluster = this.kc.getCurrentCluster();
    const tls: https.AgentOptions = {
      ca: opts.ca,
      cert: opts.cert,
      key: opts.key,
      rejectUnauthorized: cluster?.skipTLSVerify ? false : opts.rejectUnauthorized,
      servername: cluster?.tlsServerName,
    };
    if (JSON.stringify(tls) !== JSON.stringify(this.tls)) {
      this.tls = tls;
      this.agent.destroy();
      this.agent = this.makeAgent();
    }
  }

  /** GET a path on the API server (e.g. the pod proxy); credentials are loaded before the first one. */
  async getApi(path: string, opts: GetOptions): Promise<string> {
    if (!this.base) throw new Error('no Kubernetes API server configured');
    await (this.firstAuth ?? this.track(this.loadAuth()));
    return this.get(
      new URL(path, this.base),
      { ...opts, headers: { ...this.authHeaders, ...opts.headers } },
      this.agent,
    );
  }

  /** GET an absolute URL without API credentials (direct pod-IP scrape). */
  getDirect(url: string, opts: GetOptions): Promise<string> {
    return this.get(new URL(url), opts, directAgent);
  }

  /**
   * `getApi`, but a successful body goes to `onChunk` as it arrives instead of being collected: a scrape
   * is parsed while it streams in. An error status's body is still collected for the error message.
   */
  async streamApi(path: string, opts: GetOptions, onChunk: (chunk: Buffer) => void): Promise<void> {
    if (!this.base) throw new Error('no Kubernetes API server configured');
    await (this.firstAuth ?? this.track(this.loadAuth()));
    await this.get(
      new URL(path, this.base),
      { ...opts, headers: { ...this.authHeaders, ...opts.headers } },
      this.agent,
      onChunk,
    );
  }

  /** `getDirect`, streamed like `streamApi`. */
  async streamDirect(url: string, opts: GetOptions, onChunk: (chunk: Buffer) => void): Promise<void> {
    await this.get(new URL(url), opts, directAgent, onChunk);
  }

  close(): void {
    this.agent.destroy();
  }

  private get(
    url: URL,
    opts: GetOptions,
    agent: http.Agent,
    onChunk?: (chunk: Buffer) => void,
  ): Promise<string> {
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      let settled = false;
      const done = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        fn();
      };
      const req = mod.request(
        url,
        { method: 'GET', agent, headers: { Accept: 'text/plain', ...opts.headers } },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          const status = res.statusCode ?? 0;
          const ok = status >= 200 && status < 300;
          const sink = ok ? onChunk : undefined;
          res.on('data', (chunk: Buffer) => {
            if (settled) return;
            size += chunk.length;
            if (size > opts.maxBytes) {
              req.destroy();
              done(() => reject(new HttpError(status, `response larger than ${opts.maxBytes} bytes`)));
              return;
            }
            if (!sink) {
              chunks.push(chunk);
              return;
            }
            try {
              sink(chunk);
            } catch (err) {
              req.destroy();
              done(() => reject(err));
            }
          });
          res.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8');
            if (ok) done(() => resolve(body));
            else done(() => reject(new HttpError(status, `HTTP ${status}: ${body.slice(0, 200).trim()}`)));
          });
          res.on('error', (err) => done(() => reject(err)));
        },
      );
      const timer = setTimeout(() => {
        req.destroy();
        done(() => reject(new TimeoutError(`no answer within ${opts.timeoutMs} ms`)));
      }, opts.timeoutMs);
      req.on('error', (err) => done(() => reject(err)));
      req.end();
    });
  }
}

const directAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/**
 * SigV4 for Amazon Managed Service for Prometheus: queries to a workspace are signed for service `aps` with
 * the default credential chain (IRSA / Pod Identity web identity, environment, instance profile …), through
 * the AWS SDK's own signer. The only place the prometheus source touches the SDK.
 */
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { Checksum, SourceData } from '@smithy/types';

/** A request as the Prometheus client sends it. */
export interface SignableRequest {
  method: 'GET' | 'POST';
  url: URL;
  headers: Record<string, string>;
  body?: string;
}

/** Adds the SigV4 headers (`authorization`, `x-amz-date`, `x-amz-security-token`, `x-amz-content-sha256`). */
export type RequestSigner = (request: SignableRequest) => Promise<Record<string, string>>;

function toBuffer(data: SourceData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/** SHA-256 (and HMAC-SHA-256 with a secret) from node:crypto, in the shape the signer takes. */
class NodeSha256 implements Checksum {
  private hash: Hash | Hmac;
  constructor(private readonly secret?: SourceData) {
    this.hash = this.fresh();
  }
  private fresh(): Hash | Hmac {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(this.secret));
  }
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
  reset(): void {
    this.hash = this.fresh();
  }
}

export interface ApsSignerOptions {
  region: string;
  /** Tests pass fixed credentials; default: the SDK's default credential chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

export function createApsSigner(opts: ApsSignerOptions): RequestSigner {
  const signer = new SignatureV4({
    service: 'aps',
    region: opts.region,
    credentials: opts.credentials ?? defaultProvider(),
    sha256: NodeSha256,
  });
  return async (req) => {
    const query: Record<string, string> = {};
    for (const [k, v] of req.url.searchParams) query[k] = v;
    const signed = await signer.sign({
      method: req.method,
      protocol: req.url.protocol,
      hostname: req.url.hostname,
      ...(req.url.port ? { port: Number(req.url.port) } : {}),
      path: req.url.pathname,
      query,
      headers: { ...req.headers, host: req.url.host },
      ...(req.body !== undefined ? { body: req.body } : {}),
    });
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(signed.headers)) if (k !== 'host') out[k] = String(v);
    return out;
  };
}

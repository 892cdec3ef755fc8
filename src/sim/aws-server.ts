/**
 * The simulated AWS endpoint: one loopback HTTP server that the real AWS SDK v3 clients reach
 * through `AWS_ENDPOINT_URL` (or `endpoint`). Every service shares the host, so requests are told
 * apart by protocol details, as the SDK sends them:
 *   - EC2 (query, `Version=2016-11-15`, XML answers), Auto Scaling (query, `2011-01-01`) and
 *     SNS (query, `2010-03-31`): form body with `Action=` and `Version=`;
 *   - CloudWatch: JSON 1.0 with `X-Amz-Target: GraniteServiceVersion20100801.<Op>` (the 3.11xx
 *     client is awsQueryCompatible: errors also carry `x-amzn-query-error`);
 *   - Lambda (`POST /2015-03-31/functions/{name}/invocations`) and Bedrock Runtime
 *     (`POST /model/{modelId}/converse`): REST-JSON;
 * and the SigV4 credential scope's service name is checked against that guess.
 * Effects on instances go through `CloudEffects`; what the notifier sends is kept in `state`.
 */

import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { CloudEffects, InstanceState, SimInstance } from './cloud-effects.js';
import { ec2TagAction } from './ec2-tags.js';
import {
  BodyError,
  headerRecord,
  listen,
  newRequestId,
  PendingTimers,
  parseForm,
  pathAndQuery,
  readBody,
  send,
  xmlTag,
} from './http-util.js';
import { type RecordedRequest, RequestLog } from './recorder.js';

export const AWS_SERVICES = ['ec2', 'autoscaling', 'cloudwatch', 'sns', 'lambda', 'bedrock', 'eks'] as const;
export type AwsService = (typeof AWS_SERVICES)[number];

/** The service name in a SigV4 credential scope, per service. */
const SIGNING_NAME: Record<AwsService, string> = {
  ec2: 'ec2',
  autoscaling: 'autoscaling',
  cloudwatch: 'monitoring',
  sns: 'sns',
  lambda: 'lambda',
  bedrock: 'bedrock',
  eks: 'eks',
};

const QUERY_VERSIONS: Record<string, AwsService> = {
  '2016-11-15': 'ec2',
  '2011-01-01': 'autoscaling',
  '2010-03-31': 'sns',
};

const XML_NS: Record<'ec2' | 'autoscaling' | 'sns', string> = {
  ec2: 'http://ec2.amazonaws.com/doc/2016-11-15/',
  autoscaling: 'http://autoscaling.amazonaws.com/doc/2011-01-01/',
  sns: 'http://sns.amazonaws.com/doc/2010-03-31/',
};

const CLOUDWATCH_TARGET_PREFIX = 'GraniteServiceVersion20100801.';
const LAMBDA_INVOKE = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;
/** EKS DescribeNodegroup: `GET /clusters/{name}/node-groups/{nodegroupName}` (REST-JSON). */
const EKS_NODEGROUP = /^\/clusters\/([^/]+)\/node-groups\/([^/]+)$/;
const BEDROCK_MODEL = /^\/model\/([^/]+)\/([^/]+)$/;
const INSTANCE_ID = /^i-[0-9a-zA-Z]{1,32}$/;
const XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>';

/** AWS's current limits (PutMetricData: 1,000 datums and 30 dimensions since 2023; SNS subject 100). */
export const LIMITS = {
  cloudwatchDatumsPerCall: 1000,
  cloudwatchDimensions: 30,
  cloudwatchValuesPerDatum: 150,
  snsSubjectChars: 100,
  snsMessageBytes: 256 * 1024,
  snsMessageAttributes: 10,
  lambdaEventPayloadBytes: 1024 * 1024,
  lambdaSyncPayloadBytes: 6 * 1024 * 1024,
} as const;

// ─── fault injection ────────────────────────────────────────────────────────────────────────────

export interface AwsFault {
  /** HTTP status of the injected error; omit with `delayMs` alone to only slow the service down. */
  status?: number;
  /** Error code in the service's protocol; defaults from the status (500 → the service's internal error). */
  code?: string;
  message?: string;
  /** Only requests of this operation (`RebootInstances` …) get the fault; every request when omitted. */
  operation?: string;
  /** How many requests get the fault; unlimited when omitted. */
  times?: number;
  /** Answer this much later (a client with a shorter timeout gives up first). */
  delayMs?: number;
}

/** Faults queued per service: the first one that matches a request's operation answers it. */
export class AwsFaults {
  private readonly faults = new Map<AwsService, (AwsFault & { left: number })[]>();

  /** Replaces the service's faults with this one. */
  set(service: AwsService, fault: AwsFault): void {
    this.faults.set(service, [{ ...fault, left: fault.times ?? Number.POSITIVE_INFINITY }]);
  }

  /** Queues one more fault behind the service's others. */
  add(service: AwsService, fault: AwsFault): void {
    const queue = this.faults.get(service) ?? [];
    queue.push({ ...fault, left: fault.times ?? Number.POSITIVE_INFINITY });
    this.faults.set(service, queue);
  }

  clear(service?: AwsService): void {
    if (service) this.faults.delete(service);
    else this.faults.clear();
  }

  /** Consumes one use of the first fault for this service (and operation), if any. */
  take(service: AwsService, operation?: string): AwsFault | undefined {
    const queue = this.faults.get(service);
    if (!queue) return undefined;
    const f = queue.find((q) => q.operation === undefined || q.operation === operation);
    if (!f) return undefined;
    f.left -= 1;
    if (f.left <= 0) queue.splice(queue.indexOf(f), 1);
    if (queue.length === 0) this.faults.delete(service);
    return f;
  }
}

function defaultErrorCode(service: AwsService, status: number): string {
  if (status === 429 || status === 503) {
    const throttle: Record<AwsService, string> = {
      ec2: 'RequestLimitExceeded',
      autoscaling: 'Throttling',
      cloudwatch: 'Throttling',
      sns: 'Throttling',
      lambda: 'TooManyRequestsException',
      bedrock: 'ThrottlingException',
      eks: 'ThrottlingException',
    };
    return status === 503 && service === 'bedrock' ? 'ServiceUnavailableException' : throttle[service];
  }
  if (status >= 500) {
    const internal: Record<AwsService, string> = {
      ec2: 'InternalError',
      autoscaling: 'InternalFailure',
      cloudwatch: 'InternalServiceError',
      sns: 'InternalError',
      lambda: 'ServiceException',
      bedrock: 'InternalServerException',
      eks: 'ServerException',
    };
    return internal[service];
  }
  if (service === 'eks') return status === 404 ? 'ResourceNotFoundException' : 'InvalidParameterException';
  if (status === 403) {
    // What a missing IAM permission looks like per service: EC2 says UnauthorizedOperation.
    const denied: Record<AwsService, string> = {
      ec2: 'UnauthorizedOperation',
      autoscaling: 'AccessDenied',
      cloudwatch: 'AccessDenied',
      sns: 'AuthorizationError',
      lambda: 'AccessDeniedException',
      bedrock: 'AccessDeniedException',
      eks: 'AccessDeniedException',
    };
    return denied[service];
  }
  return service === 'bedrock' || service === 'lambda' ? 'ValidationException' : 'ValidationError';
}

/** The text AWS sends with the error, for the codes whose wording people recognise. */
function faultMessage(service: AwsService, operation: string, code: string): string {
  switch (code) {
    case 'UnauthorizedOperation':
    case 'AccessDenied':
    case 'AccessDeniedException':
      return `You are not authorized to perform this operation. User: arn:aws:sts::111122223333:assumed-role/gpu-medic/sim is not authorized to perform: ${SIGNING_NAME[service]}:${operation} because no identity-based policy allows the ${SIGNING_NAME[service]}:${operation} action. Encoded authorization failure message: c2ltdWxhdGVk`;
    case 'RequestLimitExceeded':
      return 'Request limit exceeded.';
    case 'InternalError':
      return 'An internal error has occurred';
    default:
      return `${code} (injected fault)`;
  }
}

// ─── state kept for assertions ──────────────────────────────────────────────────────────────────

const Dimension = z.object({ Name: z.string(), Value: z.string() });
const StatisticSet = z.object({
  SampleCount: z.number(),
  Sum: z.number(),
  Minimum: z.number(),
  Maximum: z.number(),
});
export const MetricDatum = z.object({
  MetricName: z.string().optional(),
  Dimensions: z.array(Dimension).optional(),
  Timestamp: z.union([z.number(), z.string()]).optional(),
  Value: z.number().optional(),
  StatisticValues: StatisticSet.optional(),
  Values: z.array(z.number()).optional(),
  Counts: z.array(z.number()).optional(),
  Unit: z.string().optional(),
  StorageResolution: z.number().optional(),
});
export type MetricDatum = z.infer<typeof MetricDatum>;

const PutMetricDataInput = z.object({
  Namespace: z.string().optional(),
  MetricData: z.array(MetricDatum).optional(),
  EntityMetricData: z.array(z.object({ MetricData: z.array(MetricDatum).optional() }).loose()).optional(),
  StrictEntityValidation: z.boolean().optional(),
});

const CLOUDWATCH_UNITS = new Set([
  'Seconds',
  'Microseconds',
  'Milliseconds',
  'Bytes',
  'Kilobytes',
  'Megabytes',
  'Gigabytes',
  'Terabytes',
  'Bits',
  'Kilobits',
  'Megabits',
  'Gigabits',
  'Terabits',
  'Percent',
  'Count',
  'Bytes/Second',
  'Kilobytes/Second',
  'Megabytes/Second',
  'Gigabytes/Second',
  'Terabytes/Second',
  'Bits/Second',
  'Kilobits/Second',
  'Megabits/Second',
  'Gigabits/Second',
  'Terabits/Second',
  'Count/Second',
  'None',
]);

export interface SnsMessageAttribute {
  dataType: string;
  stringValue?: string;
  binaryValue?: string;
}

export interface SimAwsState {
  cloudwatch: { namespace: string; datum: MetricDatum }[];
  sns: {
    topicArn: string;
    subject?: string;
    message: string;
    attributes: Record<string, SnsMessageAttribute>;
    messageId: string;
  }[];
  lambda: { functionName: string; qualifier?: string; invocationType: string; payload: string }[];
}

// ─── Bedrock ────────────────────────────────────────────────────────────────────────────────────

export interface ConverseRequest {
  modelId: string;
  messages: unknown[];
  system?: unknown[];
  toolConfig?: { tools?: unknown[]; toolChoice?: unknown };
  inferenceConfig?: Record<string, unknown>;
  /** The whole parsed body, for anything else a test wants to look at. */
  body: Record<string, unknown>;
}

export interface BedrockAnswer {
  toolUse?: { name: string; input: unknown; toolUseId?: string };
  text?: string;
  /** Answer with this error code (`ThrottlingException`, `ValidationException` …) instead. */
  error?: string;
  /** HTTP status for `error` (defaults per code: throttling 429, validation 400 …). */
  status?: number;
  message?: string;
  stopReason?: string;
  usage?: { inputTokens?: number; outputTokens?: number };
  delayMs?: number;
}

export type BedrockScript = (request: ConverseRequest) => BedrockAnswer | Promise<BedrockAnswer>;

const BEDROCK_ERROR_STATUS: Record<string, number> = {
  ThrottlingException: 429,
  ModelNotReadyException: 429,
  ValidationException: 400,
  AccessDeniedException: 403,
  ResourceNotFoundException: 404,
  ModelTimeoutException: 408,
  ModelErrorException: 424,
  ServiceUnavailableException: 503,
  InternalServerException: 500,
  ServiceQuotaExceededException: 400,
};

/**
 * The Claude models Bedrock knows (Anthropic's "Claude on Amazon Bedrock" table and Bedrock's model
 * lifecycle page, 2026-12): lifecycle, the cross-region profile geographies, and whether the bare model id
 * may be called on demand (Claude 4.x: profiles only). Like the real service, Converse refuses an id it
 * does not know, a geography the model has no profile in, and an end-of-life model — before any script runs.
 */
export const SIM_BEDROCK_MODELS: Readonly<
  Record<
    string,
    {
      lifecycle: 'ACTIVE' | 'LEGACY' | 'EOL';
      profiles: readonly string[];
      onDemand: boolean;
      /** How an EOL model is refused: Claude 3.7 as an invalid id (real-clusters.md), others as EOL. */
      eolAs?: 'invalid' | 'eol';
    }
  >
> = {
  'anthropic.claude-opus-4-6-v1': {
    lifecycle: 'ACTIVE',
    profiles: ['global', 'us', 'eu', 'jp', 'apac'],
    onDemand: false,
  },
  'anthropic.claude-sonnet-4-6': {
    lifecycle: 'ACTIVE',
    profiles: ['global', 'us', 'eu', 'jp'],
    onDemand: false,
  },
  'anthropic.claude-sonnet-4-5-20250929-v1:0': {
    lifecycle: 'LEGACY',
    profiles: ['global', 'us', 'eu', 'jp'],
    onDemand: false,
  },
  'anthropic.claude-sonnet-4-20250514-v1:0': {
    lifecycle: 'LEGACY',
    profiles: ['global', 'us', 'eu', 'apac'],
    onDemand: false,
  },
  'anthropic.claude-3-7-sonnet-20250219-v1:0': {
    lifecycle: 'EOL',
    profiles: ['us', 'eu', 'apac'],
    onDemand: false,
    eolAs: 'invalid',
  },
  'anthropic.claude-3-5-sonnet-20240620-v1:0': {
    lifecycle: 'EOL',
    profiles: ['us', 'eu', 'apac'],
    onDemand: true,
    eolAs: 'eol',
  },
  'anthropic.claude-3-5-sonnet-20241022-v2:0': {
    lifecycle: 'EOL',
    profiles: ['us', 'apac'],
    onDemand: true,
    eolAs: 'eol',
  },
};

const INVALID_MODEL = 'The provided model identifier is invalid.';
const EOL_MODEL =
  'This model version has reached the end of its life. Please refer to the AWS documentation for more details.';

/** Why Bedrock would refuse this model id, or undefined when it serves it. */
export function simModelRefusal(
  modelId: string,
): { status: number; code: string; message: string } | undefined {
  let id = modelId;
  const arn = /^arn:aws[a-z-]*:bedrock:[^:]*:\d*:([a-z-]+)\/(.+)$/.exec(modelId);
  if (arn) {
    // Application profiles and provisioned models are the account's own: the fake cannot know them.
    if (arn[1] !== 'inference-profile' && arn[1] !== 'foundation-model') return undefined;
    id = arn[2] ?? '';
  }
  const geo = /^(global|us|eu|jp|apac|au|ca|us-gov)\.(.+)$/.exec(id);
  const base = geo ? (geo[2] ?? '') : id;
  const model = SIM_BEDROCK_MODELS[base];
  const invalid = { status: 400, code: 'ValidationException', message: INVALID_MODEL };
  if (!model) return invalid;
  if (model.lifecycle === 'EOL') {
    return model.eolAs === 'eol'
      ? { status: 404, code: 'ResourceNotFoundException', message: EOL_MODEL }
      : invalid;
  }
  if (geo && !model.profiles.includes(geo[1] ?? '')) return invalid;
  if (!geo && !model.onDemand) {
    return {
      status: 400,
      code: 'ValidationException',
      message: `Invocation of model ID ${base} with on-demand throughput isn’t supported. Retry your request with the ID or ARN of an inference profile that contains this model.`,
    };
  }
  return undefined;
}

/** Scripted Converse answers: queued answers first, then the script; neither → unexpected call. */
export class BedrockScripts {
  readonly calls: ConverseRequest[] = [];
  private readonly queue: BedrockAnswer[] = [];
  private fn: BedrockScript | undefined;

  script(fn: BedrockScript | undefined): void {
    this.fn = fn;
  }

  enqueue(...answers: BedrockAnswer[]): void {
    this.queue.push(...answers);
  }

  get pending(): number {
    return this.queue.length;
  }

  reset(): void {
    this.queue.length = 0;
    this.fn = undefined;
    this.calls.length = 0;
  }

  /** @internal */
  async next(request: ConverseRequest): Promise<BedrockAnswer | undefined> {
    const queued = this.queue.shift();
    if (queued) return queued;
    return this.fn ? await this.fn(request) : undefined;
  }
}

// ─── Lambda ─────────────────────────────────────────────────────────────────────────────────────

export interface LambdaInvocation {
  functionName: string;
  qualifier?: string;
  invocationType: string;
  payload: string;
}
/** What a RequestResponse invocation returns (JSON-encoded); the default returns `null`. */
export type LambdaResponder = (invocation: LambdaInvocation) => unknown;

// ─── the server ─────────────────────────────────────────────────────────────────────────────────

export interface SimAwsOptions {
  port?: number;
  log?: RequestLog;
  /** When set, SigV4 credential scopes must name this region. */
  region?: string;
  /** Keep at most this many entries per `state` list (the benchmark sends many). 0 = unbounded. */
  stateLimit?: number;
}

export interface SimAws {
  /** `http://127.0.0.1:PORT` — use as `endpoint` or `AWS_ENDPOINT_URL`. */
  url: string;
  log: RequestLog;
  state: SimAwsState;
  faults: AwsFaults;
  bedrock: BedrockScripts;
  lambda: { respond(fn: LambdaResponder | undefined): void };
  close(): Promise<void>;
}

class AwsError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** A request no real client of ours should send: also kept in `log.unexpected`. */
    readonly unexpected = false,
  ) {
    super(message);
  }
}

interface Reply {
  status: number;
  contentType: string;
  body: string;
  headers?: Record<string, string>;
}

const XML = 'text/xml;charset=UTF-8';
const JSON_10 = 'application/x-amz-json-1.0';
const JSON_REST = 'application/json';

function xmlReply(body: string): Reply {
  return { status: 200, contentType: XML, body: XML_DECL + body };
}

const CLOUDWATCH_ERROR_SHAPES: Record<string, string> = {
  InvalidParameterValue: 'InvalidParameterValueException',
  MissingParameter: 'MissingRequiredParameterException',
  InvalidParameterCombination: 'InvalidParameterCombinationException',
  InternalServiceError: 'InternalServiceFault',
  LimitExceeded: 'LimitExceededException',
};

function errorReply(service: AwsService | undefined, err: AwsError, requestId: string): Reply {
  const { status, code, message } = err;
  if (service === 'ec2') {
    const body = `<Response><Errors><Error>${xmlTag('Code', code)}${xmlTag('Message', message)}</Error></Errors>${xmlTag('RequestID', requestId)}</Response>`;
    return { status, contentType: XML, body: XML_DECL + body };
  }
  if (service === 'cloudwatch') {
    const type = status >= 500 ? 'Receiver' : 'Sender';
    return {
      status,
      contentType: JSON_10,
      body: JSON.stringify({
        __type: `com.amazonaws.cloudwatch#${CLOUDWATCH_ERROR_SHAPES[code] ?? code}`,
        message,
      }),
      headers: { 'x-amzn-query-error': `${code};${type}` },
    };
  }
  if (service === 'lambda' || service === 'bedrock' || service === 'eks') {
    const payload: Record<string, string> = { message };
    if (service === 'lambda') payload.Type = status >= 500 ? 'Service' : 'User';
    return {
      status,
      contentType: JSON_REST,
      body: JSON.stringify(payload),
      headers: { 'x-amzn-errortype': code },
    };
  }
  const ns = service === 'sns' || service === 'autoscaling' ? ` xmlns="${XML_NS[service]}"` : '';
  const type = status >= 500 ? 'Receiver' : 'Sender';
  const body = `<ErrorResponse${ns}><Error>${xmlTag('Type', type)}${xmlTag('Code', code)}${xmlTag('Message', message)}</Error>${xmlTag('RequestId', requestId)}</ErrorResponse>`;
  return { status, contentType: XML, body: XML_DECL + body };
}

interface Route {
  service: AwsService | undefined;
  operation: string | undefined;
  params: Record<string, string>;
  /** For REST routes: the decoded path parameter (function name, model id). */
  resource?: string;
}

function credentialScopeService(auth: string | undefined): { service?: string; region?: string } {
  if (!auth) return {};
  const m = /Credential=[^/,\s]+\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/.exec(auth);
  return m ? { region: m[1], service: m[2] } : {};
}

function route(req: IncomingMessage, rawPath: string, body: string): Route {
  const lambda = LAMBDA_INVOKE.exec(rawPath);
  if (lambda?.[1]) {
    return {
      service: 'lambda',
      operation: req.method === 'POST' ? 'Invoke' : undefined,
      params: {},
      resource: safeDecode(lambda[1]),
    };
  }
  if (rawPath.startsWith('/2015-03-31/')) return { service: 'lambda', operation: undefined, params: {} };
  const nodegroup = EKS_NODEGROUP.exec(rawPath);
  if (nodegroup?.[1] && nodegroup[2]) {
    return {
      service: 'eks',
      operation: req.method === 'GET' ? 'DescribeNodegroup' : undefined,
      params: { clusterName: safeDecode(nodegroup[1]), nodegroupName: safeDecode(nodegroup[2]) },
    };
  }
  // Any other EKS API (ListNodegroups, DescribeCluster …) is one gpu-medic does not make: refused.
  if (rawPath.startsWith('/clusters')) return { service: 'eks', operation: undefined, params: {} };
  const model = BEDROCK_MODEL.exec(rawPath);
  if (model?.[1]) {
    const operation = req.method === 'POST' && model[2] === 'converse' ? 'Converse' : undefined;
    return { service: 'bedrock', operation, params: {}, resource: safeDecode(model[1]) };
  }
  const target = req.headers['x-amz-target'];
  if (typeof target === 'string') {
    if (target.startsWith(CLOUDWATCH_TARGET_PREFIX)) {
      return { service: 'cloudwatch', operation: target.slice(CLOUDWATCH_TARGET_PREFIX.length), params: {} };
    }
    return { service: undefined, operation: target, params: {} };
  }
  const contentType = String(req.headers['content-type'] ?? '');
  if (req.method === 'POST' && contentType.startsWith('application/x-www-form-urlencoded')) {
    const params = parseForm(body);
    const service = params.Version ? QUERY_VERSIONS[params.Version] : undefined;
    return { service, operation: params.Action, params };
  }
  const scope = credentialScopeService(headerString(req, 'authorization')).service;
  const byScope = AWS_SERVICES.find((s) => SIGNING_NAME[s] === scope);
  return { service: byScope, operation: undefined, params: {} };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function headerString(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** `Prefix.1`, `Prefix.2` … in index order (query-protocol lists). */
function listParam(params: Record<string, string>, prefix: string): string[] {
  const out: [number, string][] = [];
  const p = `${prefix}.`;
  for (const [k, v] of Object.entries(params)) {
    if (!k.startsWith(p)) continue;
    const n = Number(k.slice(p.length));
    if (Number.isInteger(n) && n > 0) out.push([n, v]);
  }
  return out.sort((a, b) => a[0] - b[0]).map(([, v]) => v);
}

const STATE_CODES: Record<InstanceState, number> = {
  pending: 0,
  running: 16,
  'shutting-down': 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

function stateXml(tag: string, state: InstanceState): string {
  return `<${tag}>${xmlTag('code', STATE_CODES[state])}${xmlTag('name', state)}</${tag}>`;
}

function privateIp(dns: string): string | undefined {
  const m = /^ip-(\d+)-(\d+)-(\d+)-(\d+)\./.exec(dns);
  return m ? m.slice(1, 5).join('.') : undefined;
}

function instanceXml(i: SimInstance): string {
  const tags = Object.entries(i.tags)
    .map(([k, v]) => `<item>${xmlTag('key', k)}${xmlTag('value', v)}</item>`)
    .join('');
  return (
    '<item>' +
    xmlTag('instanceId', i.instanceId) +
    xmlTag('imageId', 'ami-0sim00000000000') +
    stateXml('instanceState', i.state) +
    xmlTag('privateDnsName', i.privateDnsName) +
    xmlTag('dnsName', '') +
    xmlTag('instanceType', i.instanceType) +
    xmlTag('launchTime', i.launchTime) +
    `<placement>${xmlTag('availabilityZone', i.availabilityZone)}${xmlTag('tenancy', 'default')}</placement>` +
    xmlTag('privateIpAddress', privateIp(i.privateDnsName)) +
    xmlTag('architecture', 'x86_64') +
    (i.operator ? `<operator>${xmlTag('managed', true)}${xmlTag('principal', i.operator)}</operator>` : '') +
    `<tagSet>${tags}</tagSet>` +
    '</item>'
  );
}

function notFound(ids: string[]): AwsError {
  const list = ids.join(', ');
  const message =
    ids.length === 1 ? `The instance ID '${list}' does not exist` : `The instance IDs '${list}' do not exist`;
  return new AwsError(400, 'InvalidInstanceID.NotFound', message);
}

function checkInstanceIds(ids: string[]): void {
  const bad = ids.find((id) => !INSTANCE_ID.test(id));
  if (bad !== undefined) throw new AwsError(400, 'InvalidInstanceID.Malformed', `Invalid id: "${bad}"`);
}

function checkDryRun(params: Record<string, string>): void {
  if (params.DryRun === 'true') {
    throw new AwsError(412, 'DryRunOperation', 'Request would have succeeded, but DryRun flag is set.');
  }
}

type FilterFn = (i: SimInstance, values: string[]) => boolean;
const EC2_FILTERS: Record<string, FilterFn> = {
  'instance-id': (i, v) => v.includes(i.instanceId),
  'instance-state-name': (i, v) => v.includes(i.state),
  'instance-type': (i, v) => v.includes(i.instanceType),
  'availability-zone': (i, v) => v.includes(i.availabilityZone),
  'private-dns-name': (i, v) => v.includes(i.privateDnsName),
  'tag-key': (i, v) => v.some((k) => k in i.tags),
};

function ec2Filters(params: Record<string, string>): ((i: SimInstance) => boolean)[] {
  const out: ((i: SimInstance) => boolean)[] = [];
  for (let n = 1; params[`Filter.${n}.Name`] !== undefined; n++) {
    const name = params[`Filter.${n}.Name`] ?? '';
    const values = listParam(params, `Filter.${n}.Value`);
    if (name.startsWith('tag:')) {
      const key = name.slice(4);
      out.push((i) => i.tags[key] !== undefined && values.includes(i.tags[key] ?? ''));
      continue;
    }
    const fn = EC2_FILTERS[name];
    if (!fn) throw new AwsError(400, 'InvalidParameterValue', `The filter '${name}' is invalid`);
    out.push((i) => fn(i, values));
  }
  return out;
}

function asgLifecycle(state: InstanceState): string {
  if (state === 'pending') return 'Pending';
  if (state === 'shutting-down' || state === 'stopping') return 'Terminating';
  if (state === 'terminated') return 'Terminated';
  return 'InService';
}

function queryResponse(
  service: 'autoscaling' | 'sns',
  action: string,
  result: string,
  requestId: string,
): Reply {
  const inner = result === '' ? '' : `<${action}Result>${result}</${action}Result>`;
  return xmlReply(
    `<${action}Response xmlns="${XML_NS[service]}">${inner}<ResponseMetadata>${xmlTag('RequestId', requestId)}</ResponseMetadata></${action}Response>`,
  );
}

function estimateTokens(value: unknown): number {
  return Math.max(1, Math.ceil(JSON.stringify(value ?? '').length / 4));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export async function startSimAws(effects: CloudEffects, opts: SimAwsOptions = {}): Promise<SimAws> {
  const log = opts.log ?? new RequestLog();
  const faults = new AwsFaults();
  const bedrock = new BedrockScripts();
  const timers = new PendingTimers();
  const state: SimAwsState = { cloudwatch: [], sns: [], lambda: [] };
  const stateLimit = opts.stateLimit ?? 0;
  let lambdaResponder: LambdaResponder | undefined;

  function keep<T>(list: T[], items: T[]): void {
    for (const item of items) list.push(item);
    if (stateLimit > 0 && list.length > stateLimit) list.splice(0, list.length - stateLimit);
  }

  // ── EC2 ──
  function ec2(action: string, p: Record<string, string>, requestId: string): Reply {
    const wrap = (inner: string) =>
      xmlReply(
        `<${action}Response xmlns="${XML_NS.ec2}">${xmlTag('requestId', requestId)}${inner}</${action}Response>`,
      );
    if (action === 'DescribeInstances') {
      checkDryRun(p);
      const ids = listParam(p, 'InstanceId');
      checkInstanceIds(ids);
      const filters = ec2Filters(p);
      let instances = effects.describeInstances(ids.length > 0 ? ids : undefined);
      if (ids.length > 0) {
        const missing = ids.filter((id) => !instances.some((i) => i.instanceId === id));
        if (missing.length > 0) throw notFound(missing);
        instances = instances.filter((i) => ids.includes(i.instanceId));
      }
      instances = instances.filter((i) => filters.every((f) => f(i)));
      const reservations = instances
        .map(
          (i) =>
            `<item>${xmlTag('reservationId', `r-${i.instanceId.slice(2)}`)}${xmlTag('ownerId', '123456789012')}<groupSet/><instancesSet>${instanceXml(i)}</instancesSet></item>`,
        )
        .join('');
      return wrap(`<reservationSet>${reservations}</reservationSet>`);
    }
    if (action === 'RebootInstances' || action === 'TerminateInstances') {
      const ids = listParam(p, 'InstanceId');
      if (ids.length === 0)
        throw new AwsError(400, 'MissingParameter', 'The request must contain the parameter InstanceId');
      checkInstanceIds(ids);
      const known = effects.describeInstances(ids);
      const usable = (id: string) =>
        known.some(
          (i) => i.instanceId === id && (action === 'TerminateInstances' || i.state !== 'terminated'),
        );
      const missing = ids.filter((id) => !usable(id));
      if (missing.length > 0) throw notFound(missing);
      // EC2 managed instances (EKS Auto Mode): IAM-enforced restrictions refuse these calls from the account,
      // whatever its own policies say, DryRun included. EC2's denial code is UnauthorizedOperation.
      const managed = known.find((i) => ids.includes(i.instanceId) && i.operator !== undefined);
      if (managed) {
        throw new AwsError(
          403,
          'UnauthorizedOperation',
          `You are not authorized to perform this operation. ${managed.instanceId} is an EC2 managed instance operated by ${managed.operator}.`,
        );
      }
      checkDryRun(p);
      if (action === 'RebootInstances') {
        const failed = ids.filter((id) => !effects.rebootInstance(id));
        if (failed.length > 0) throw notFound(failed);
        return wrap(xmlTag('return', true));
      }
      const items = ids.map((id) => {
        const previous = effects.terminateInstance(id, { decrementDesiredCapacity: false });
        if (previous === undefined) throw notFound([id]);
        const current: InstanceState = previous === 'terminated' ? 'terminated' : 'shutting-down';
        return `<item>${xmlTag('instanceId', id)}${stateXml('currentState', current)}${stateXml('previousState', previous)}</item>`;
      });
      return wrap(`<instancesSet>${items.join('')}</instancesSet>`);
    }
    const tagged = ec2TagAction(effects, action, p);
    if (tagged && 'error' in tagged) {
      throw new AwsError(tagged.error.status, tagged.error.code, tagged.error.message);
    }
    if (tagged) return wrap(tagged.inner);
    throw unknownAction(action);
  }

  // ── Auto Scaling ──
  function autoscaling(action: string, p: Record<string, string>, requestId: string): Reply {
    if (action === 'DescribeAutoScalingInstances') {
      const ids = listParam(p, 'InstanceIds.member');
      if (ids.length > 50) {
        throw new AwsError(400, 'ValidationError', 'The number of instance ids that may be passed in is 50.');
      }
      const members = effects
        .describeInstances(ids.length > 0 ? ids : undefined)
        .filter((i) => i.autoScalingGroup !== undefined && (ids.length === 0 || ids.includes(i.instanceId)))
        .map(
          (i) =>
            '<member>' +
            xmlTag('InstanceId', i.instanceId) +
            xmlTag('InstanceType', i.instanceType) +
            xmlTag('AutoScalingGroupName', i.autoScalingGroup) +
            xmlTag('AvailabilityZone', i.availabilityZone) +
            xmlTag('LifecycleState', asgLifecycle(i.state)) +
            xmlTag('HealthStatus', i.state === 'running' || i.state === 'pending' ? 'HEALTHY' : 'UNHEALTHY') +
            xmlTag('ProtectedFromScaleIn', false) +
            '</member>',
        )
        .join('');
      return queryResponse(
        'autoscaling',
        action,
        `<AutoScalingInstances>${members}</AutoScalingInstances>`,
        requestId,
      );
    }
    if (action === 'TerminateInstanceInAutoScalingGroup') {
      const id = p.InstanceId;
      const decrement = p.ShouldDecrementDesiredCapacity;
      if (!id)
        throw new AwsError(
          400,
          'ValidationError',
          "1 validation error detected: Value null at 'instanceId' failed to satisfy constraint: Member must not be null",
        );
      if (decrement !== 'true' && decrement !== 'false') {
        throw new AwsError(
          400,
          'ValidationError',
          "1 validation error detected: Value null at 'shouldDecrementDesiredCapacity' failed to satisfy constraint: Member must not be null",
        );
      }
      const instance = effects.describeInstances([id]).find((i) => i.instanceId === id);
      if (!instance?.autoScalingGroup || instance.state === 'terminated') {
        throw new AwsError(
          400,
          'ValidationError',
          `Instance Id not found - No managed instance found for instance ID: ${id}`,
        );
      }
      const previous = effects.terminateInstance(id, { decrementDesiredCapacity: decrement === 'true' });
      if (previous === undefined) {
        throw new AwsError(
          400,
          'ValidationError',
          `Instance Id not found - No managed instance found for instance ID: ${id}`,
        );
      }
      const now = new Date().toISOString();
      const cause =
        `At ${now} instance ${id} was taken out of service in response to a user request` +
        (decrement === 'true' ? ', shrinking the capacity by 1.' : '.');
      const activity =
        '<Activity>' +
        xmlTag('ActivityId', randomUUID()) +
        xmlTag('AutoScalingGroupName', instance.autoScalingGroup) +
        xmlTag('Description', `Terminating EC2 instance: ${id}`) +
        xmlTag('Cause', cause) +
        xmlTag('StartTime', now) +
        xmlTag('StatusCode', 'InProgress') +
        xmlTag('Progress', 0) +
        xmlTag('Details', JSON.stringify({ 'Availability Zone': instance.availabilityZone })) +
        '</Activity>';
      return queryResponse('autoscaling', action, activity, requestId);
    }
    throw unknownAction(action);
  }

  // ── SNS ──
  function sns(action: string, p: Record<string, string>, requestId: string): Reply {
    if (action !== 'Publish') throw unknownAction(action);
    const topicArn = p.TopicArn ?? p.TargetArn;
    if (!topicArn) {
      throw new AwsError(
        400,
        'InvalidParameter',
        'Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter',
      );
    }
    if (!/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$/.test(topicArn)) {
      throw new AwsError(400, 'InvalidParameter', 'Invalid parameter: TopicArn');
    }
    const message = p.Message;
    if (message === undefined || message === '') {
      throw new AwsError(
        400,
        'ValidationError',
        "1 validation error detected: Value null at 'message' failed to satisfy constraint: Member must not be null",
      );
    }
    if (Buffer.byteLength(message) > LIMITS.snsMessageBytes) {
      throw new AwsError(400, 'InvalidParameter', 'Invalid parameter: Message too long');
    }
    const subject = p.Subject;
    if (
      subject !== undefined &&
      (subject.length === 0 || subject.length > LIMITS.snsSubjectChars || !/^[\x20-\x7e]+$/.test(subject))
    ) {
      throw new AwsError(400, 'InvalidParameter', 'Invalid parameter: Subject');
    }
    const attributes: Record<string, SnsMessageAttribute> = {};
    for (let n = 1; p[`MessageAttributes.entry.${n}.Name`] !== undefined; n++) {
      const name = p[`MessageAttributes.entry.${n}.Name`] ?? '';
      const dataType = p[`MessageAttributes.entry.${n}.Value.DataType`];
      const stringValue = p[`MessageAttributes.entry.${n}.Value.StringValue`];
      const binaryValue = p[`MessageAttributes.entry.${n}.Value.BinaryValue`];
      if (!dataType || !/^(String|Number|Binary)(\.|$)|^String\.Array$/.test(dataType)) {
        throw new AwsError(
          400,
          'ParameterValueInvalid',
          `The message attribute '${name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.`,
        );
      }
      if (stringValue === undefined && binaryValue === undefined) {
        throw new AwsError(
          400,
          'ParameterValueInvalid',
          `The message attribute '${name}' must contain non-empty message attribute value for message attribute type '${dataType}'.`,
        );
      }
      if (dataType.startsWith('Number') && !Number.isFinite(Number(stringValue))) {
        throw new AwsError(
          400,
          'ParameterValueInvalid',
          `Could not cast message attribute '${name}' value to number.`,
        );
      }
      attributes[name] = { dataType, stringValue, binaryValue };
    }
    if (Object.keys(attributes).length > LIMITS.snsMessageAttributes) {
      throw new AwsError(
        400,
        'InvalidParameterValue',
        `Number of message attributes [${Object.keys(attributes).length}] exceeds the allowed maximum [${LIMITS.snsMessageAttributes}].`,
      );
    }
    const messageId = randomUUID();
    keep(state.sns, [{ topicArn, subject, message, attributes, messageId }]);
    return queryResponse('sns', action, xmlTag('MessageId', messageId), requestId);
  }

  // ── CloudWatch ──
  function cloudwatch(action: string, body: string): Reply {
    if (action !== 'PutMetricData') throw unknownAction(action);
    let json: unknown;
    try {
      json = body === '' ? {} : JSON.parse(body);
    } catch {
      throw new AwsError(400, 'SerializationException', 'Request body is not valid JSON', true);
    }
    const parsed = PutMetricDataInput.safeParse(json);
    if (!parsed.success) {
      throw new AwsError(
        400,
        'SerializationException',
        `Malformed PutMetricData: ${parsed.error.message}`,
        true,
      );
    }
    const { Namespace: namespace, MetricData, EntityMetricData } = parsed.data;
    const datums = [...(MetricData ?? []), ...(EntityMetricData ?? []).flatMap((e) => e.MetricData ?? [])];
    if (!namespace) throw new AwsError(400, 'MissingParameter', 'The parameter Namespace is required.');
    if (namespace.startsWith('AWS/') || namespace.length > 255 || !/^[\x21-\x7e ]+$/.test(namespace)) {
      throw new AwsError(
        400,
        'InvalidParameterValue',
        `The value ${namespace} for parameter Namespace is invalid.`,
      );
    }
    if (datums.length === 0)
      throw new AwsError(400, 'MissingParameter', 'The parameter MetricData is required.');
    if (datums.length > LIMITS.cloudwatchDatumsPerCall) {
      throw new AwsError(
        400,
        'InvalidParameterValue',
        `The collection MetricData must not have a size greater than ${LIMITS.cloudwatchDatumsPerCall}.`,
      );
    }
    datums.forEach((d, idx) => {
      const where = `MetricData.member.${idx + 1}`;
      if (!d.MetricName)
        throw new AwsError(400, 'MissingParameter', `The parameter ${where}.MetricName is required.`);
      if ((d.Dimensions?.length ?? 0) > LIMITS.cloudwatchDimensions) {
        throw new AwsError(
          400,
          'InvalidParameterValue',
          `The collection ${where}.Dimensions must not have a size greater than ${LIMITS.cloudwatchDimensions}.`,
        );
      }
      for (const dim of d.Dimensions ?? []) {
        if (dim.Name === '' || dim.Value === '') {
          throw new AwsError(
            400,
            'InvalidParameterValue',
            `The value for ${where}.Dimensions must not be empty.`,
          );
        }
      }
      const kinds = [d.Value !== undefined, d.StatisticValues !== undefined, d.Values !== undefined].filter(
        Boolean,
      );
      if (kinds.length > 1) {
        throw new AwsError(
          400,
          'InvalidParameterCombination',
          `The parameters ${where}.Value, ${where}.StatisticValues and ${where}.Values are mutually exclusive.`,
        );
      }
      if ((d.Values?.length ?? 0) > LIMITS.cloudwatchValuesPerDatum) {
        throw new AwsError(
          400,
          'InvalidParameterValue',
          `The collection ${where}.Values must not have a size greater than ${LIMITS.cloudwatchValuesPerDatum}.`,
        );
      }
      if (d.Unit !== undefined && !CLOUDWATCH_UNITS.has(d.Unit)) {
        throw new AwsError(
          400,
          'InvalidParameterValue',
          `The value ${d.Unit} for parameter ${where}.Unit is invalid.`,
        );
      }
    });
    keep(
      state.cloudwatch,
      datums.map((datum) => ({ namespace, datum })),
    );
    return { status: 200, contentType: JSON_10, body: '{}' };
  }

  // ── Lambda ──
  function lambda(
    req: IncomingMessage,
    functionName: string,
    query: Record<string, string>,
    body: string,
  ): Reply {
    const invocationType = headerString(req, 'x-amz-invocation-type') ?? 'RequestResponse';
    if (!['RequestResponse', 'Event', 'DryRun'].includes(invocationType)) {
      throw new AwsError(400, 'InvalidParameterValueException', `Invalid invocation type: ${invocationType}`);
    }
    const limit = invocationType === 'Event' ? LIMITS.lambdaEventPayloadBytes : LIMITS.lambdaSyncPayloadBytes;
    if (Buffer.byteLength(body) > limit) {
      throw new AwsError(
        413,
        'RequestTooLargeException',
        `Request must be smaller than ${limit} bytes for the InvokeFunction operation`,
      );
    }
    if (body !== '') {
      try {
        JSON.parse(body);
      } catch {
        throw new AwsError(400, 'InvalidRequestContentException', 'Could not parse request body into json');
      }
    }
    const invocation: LambdaInvocation = {
      functionName,
      qualifier: query.Qualifier,
      invocationType,
      payload: body,
    };
    if (invocationType === 'DryRun') return { status: 204, contentType: JSON_REST, body: '' };
    keep(state.lambda, [invocation]);
    if (invocationType === 'Event') return { status: 202, contentType: JSON_REST, body: '' };
    const out = lambdaResponder ? lambdaResponder(invocation) : null;
    return {
      status: 200,
      contentType: JSON_REST,
      body: JSON.stringify(out ?? null),
      headers: { 'X-Amz-Executed-Version': '$LATEST' },
    };
  }

  // ── Bedrock ──
  async function converse(modelId: string, body: string): Promise<Reply> {
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      throw new AwsError(
        400,
        'ValidationException',
        'Malformed input request, please reformat your input and try again.',
        true,
      );
    }
    if (!isRecord(json) || !Array.isArray(json.messages)) {
      throw new AwsError(
        400,
        'ValidationException',
        'Malformed input request: required key [messages] not found',
        true,
      );
    }
    const messages = json.messages;
    const first = messages[0];
    if (!isRecord(first) || first.role !== 'user') {
      throw new AwsError(
        400,
        'ValidationException',
        'A conversation must start with a user message. Try again with a conversation that starts with a user message.',
      );
    }
    const refused = simModelRefusal(modelId);
    if (refused) throw new AwsError(refused.status, refused.code, refused.message);
    const request: ConverseRequest = {
      modelId,
      messages,
      system: Array.isArray(json.system) ? json.system : undefined,
      toolConfig: isRecord(json.toolConfig) ? (json.toolConfig as ConverseRequest['toolConfig']) : undefined,
      inferenceConfig: isRecord(json.inferenceConfig) ? json.inferenceConfig : undefined,
      body: json,
    };
    bedrock.calls.push(request);
    let answer: BedrockAnswer | undefined;
    try {
      answer = await bedrock.next(request);
    } catch (e) {
      throw new AwsError(
        500,
        'InternalServerException',
        `the Bedrock script threw: ${(e as Error).message}`,
        true,
      );
    }
    if (
      !answer ||
      (answer.toolUse === undefined && answer.text === undefined && answer.error === undefined)
    ) {
      throw new AwsError(
        500,
        'InternalServerException',
        'unexpected Converse call: no scripted or queued answer',
        true,
      );
    }
    if (answer.delayMs) await timers.wait(answer.delayMs);
    if (answer.error) {
      const status = answer.status ?? BEDROCK_ERROR_STATUS[answer.error] ?? 400;
      throw new AwsError(status, answer.error, answer.message ?? `${answer.error} (scripted)`);
    }
    const content: unknown[] = [];
    if (answer.text !== undefined) content.push({ text: answer.text });
    if (answer.toolUse) {
      const tools = request.toolConfig?.tools ?? [];
      const declared = tools.some(
        (t) => isRecord(t) && isRecord(t.toolSpec) && t.toolSpec.name === answer.toolUse?.name,
      );
      if (!declared) {
        throw new AwsError(
          500,
          'InternalServerException',
          `scripted toolUse '${answer.toolUse.name}' is not in the request's toolConfig`,
          true,
        );
      }
      content.push({
        toolUse: {
          toolUseId: answer.toolUse.toolUseId ?? `tooluse_${randomBytes(11).toString('base64url')}`,
          name: answer.toolUse.name,
          input: answer.toolUse.input,
        },
      });
    }
    const inputTokens =
      answer.usage?.inputTokens ?? estimateTokens([request.system, messages, request.toolConfig]);
    const outputTokens = answer.usage?.outputTokens ?? estimateTokens(content);
    const response = {
      output: { message: { role: 'assistant', content } },
      stopReason: answer.stopReason ?? (answer.toolUse ? 'tool_use' : 'end_turn'),
      usage: { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens },
      metrics: { latencyMs: answer.delayMs ?? 1 },
    };
    return { status: 200, contentType: JSON_REST, body: JSON.stringify(response) };
  }

  // ── EKS ──
  function describeNodegroup(clusterName: string, nodegroupName: string): Reply {
    const nodegroup = effects.describeNodegroup?.(clusterName, nodegroupName);
    if (!nodegroup) {
      throw new AwsError(404, 'ResourceNotFoundException', `No node group found for name: ${nodegroupName}.`);
    }
    return { status: 200, contentType: JSON_REST, body: JSON.stringify({ nodegroup }) };
  }

  function unknownAction(action: string): AwsError {
    return new AwsError(
      400,
      'InvalidAction',
      `The action ${action} is not valid for this web service.`,
      true,
    );
  }

  async function dispatch(
    req: IncomingMessage,
    r: Route,
    query: Record<string, string>,
    body: string,
    requestId: string,
  ): Promise<Reply> {
    const { service, operation } = r;
    if (!service)
      throw new AwsError(400, 'InvalidAction', `no simulated AWS service understands this request`, true);
    if (!operation)
      throw new AwsError(
        400,
        service === 'ec2' || service === 'autoscaling' || service === 'sns'
          ? 'MissingAction'
          : 'UnknownOperationException',
        `${service}: missing or unknown operation`,
        true,
      );

    const auth = headerString(req, 'authorization');
    const bearer = service === 'bedrock' && auth?.startsWith('Bearer ');
    if (!auth)
      throw new AwsError(403, 'MissingAuthenticationToken', 'Request is missing Authentication Token', true);
    if (!bearer) {
      const scope = credentialScopeService(auth);
      if (scope.service !== SIGNING_NAME[service]) {
        throw new AwsError(
          400,
          'IncompleteSignature',
          `Credential should be scoped to correct service: '${SIGNING_NAME[service]}', not '${scope.service ?? ''}'`,
          true,
        );
      }
      if (opts.region && scope.region !== opts.region) {
        throw new AwsError(
          403,
          'SignatureDoesNotMatch',
          `Credential should be scoped to a valid region, not '${scope.region ?? ''}'`,
          true,
        );
      }
    }

    const fault = faults.take(service, operation);
    if (fault) {
      if (fault.delayMs) await timers.wait(fault.delayMs);
      if (fault.status !== undefined || fault.code !== undefined) {
        const status = fault.status ?? 500;
        const code = fault.code ?? defaultErrorCode(service, status);
        throw new AwsError(status, code, fault.message ?? faultMessage(service, operation, code));
      }
    }

    switch (service) {
      case 'ec2':
        return ec2(operation, r.params, requestId);
      case 'autoscaling':
        return autoscaling(operation, r.params, requestId);
      case 'sns':
        return sns(operation, r.params, requestId);
      case 'cloudwatch':
        return cloudwatch(operation, body);
      case 'lambda':
        return lambda(req, r.resource ?? '', query, body);
      case 'bedrock':
        return converse(r.resource ?? '', body);
      case 'eks':
        return describeNodegroup(r.params.clusterName ?? '', r.params.nodegroupName ?? '');
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = newRequestId();
    const { rawPath, query } = pathAndQuery(req);
    const record: RecordedRequest = {
      service: 'aws',
      method: req.method ?? 'GET',
      // As sent on the wire (still percent-encoded), so tests can check the client's encoding.
      path: rawPath,
      query,
      headers: headerRecord(req),
      body: '',
      status: 0,
      at: Date.now(),
    };
    let r: Route = { service: undefined, operation: undefined, params: {} };
    let reply: Reply;
    let unexpected = false;
    try {
      record.body = await readBody(req);
      r = route(req, rawPath, record.body);
      reply = await dispatch(req, r, query, record.body, requestId);
    } catch (e) {
      const err =
        e instanceof AwsError
          ? e
          : e instanceof BodyError
            ? new AwsError(e.status, 'SerializationException', e.message, true)
            : new AwsError(500, 'InternalFailure', `simulator error: ${(e as Error).message}`, true);
      unexpected = err.unexpected;
      reply = errorReply(r.service, err, requestId);
    }
    record.service = r.service ?? 'aws';
    record.operation = r.operation;
    record.status = reply.status;
    if (unexpected) log.recordUnexpected(record);
    else log.record(record);
    send(res, reply.status, reply.contentType, reply.body, {
      'x-amzn-RequestId': requestId,
      ...reply.headers,
    });
  }

  const started = await listen(
    (req, res) => {
      handle(req, res).catch(() => {
        // handle() answers every error itself; this only guards against a socket torn down mid-write.
        if (!res.headersSent) res.destroy();
      });
    },
    opts.port ?? 0,
    () => timers.clear(),
  );

  return {
    url: started.origin,
    log,
    state,
    faults,
    bedrock,
    lambda: {
      respond(fn) {
        lambdaResponder = fn;
      },
    },
    close: started.close,
  };
}

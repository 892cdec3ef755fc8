/**
 * The simulated AWS endpoint's wire protocol. Every service shares one host, so requests are told
 * apart by protocol details, as the SDK sends them:
 *   - EC2 (query, `Version=2016-11-15`, XML answers), Auto Scaling (query, `2011-01-01`) and
 *     SNS (query, `2010-03-31`): form body with `Action=` and `Version=`;
 *   - CloudWatch: JSON 1.0 with `X-Amz-Target: GraniteServiceVersion20100801.<Op>` (the 3.11xx
 *     client is awsQueryCompatible: errors also carry `x-amzn-query-error`);
 *   - Lambda (`POST /2015-03-31/functions/{name}/invocations`) and Bedrock Runtime
 *     (`POST /model/{modelId}/converse`): REST-JSON;
 * and the SigV4 credential scope's service name is checked against that guess. Errors are answered
 * in each service's own shape.
 */

import type { IncomingMessage } from 'node:http';
import { parseForm, xmlTag } from './http-util.js';

export const AWS_SERVICES = ['ec2', 'autoscaling', 'cloudwatch', 'sns', 'lambda', 'bedrock', 'eks'] as const;
export type AwsService = (typeof AWS_SERVICES)[number];

/** The service name in a SigV4 credential scope, per service. */
export const SIGNING_NAME: Record<AwsService, string> = {
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

export const XML_NS: Record<'ec2' | 'autoscaling' | 'sns', string> = {
  ec2: 'http://ec2.amazonaws.com/doc/2016-11-15/',
  autoscaling: 'http://autoscaling.amazonaws.com/doc/2011-01-01/',
  sns: 'http://sns.amazonaws.com/doc/2010-03-31/',
};

const CLOUDWATCH_TARGET_PREFIX = 'GraniteServiceVersion20100801.';
const LAMBDA_INVOKE = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;
/** EKS DescribeNodegroup: `GET /clusters/{name}/node-groups/{nodegroupName}` (REST-JSON). */
const EKS_NODEGROUP = /^\/clusters\/([^/]+)\/node-groups\/([^/]+)$/;
const BEDROCK_MODEL = /^\/model\/([^/]+)\/([^/]+)$/;
const XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>';

export class AwsError extends Error {
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

export interface Reply {
  status: number;
  contentType: string;
  body: string;
  headers?: Record<string, string>;
}

export const XML = 'text/xml;charset=UTF-8';
export const JSON_10 = 'application/x-amz-json-1.0';
export const JSON_REST = 'application/json';

export function xmlReply(body: string): Reply {
  return { status: 200, contentType: XML, body: XML_DECL + body };
}

const CLOUDWATCH_ERROR_SHAPES: Record<string, string> = {
  InvalidParameterValue: 'InvalidParameterValueException',
  MissingParameter: 'MissingRequiredParameterException',
  InvalidParameterCombination: 'InvalidParameterCombinationException',
  InternalServiceError: 'InternalServiceFault',
  LimitExceeded: 'LimitExceededException',
};

export function errorReply(service: AwsService | undefined, err: AwsError, requestId: string): Reply {
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

export interface Route {
  service: AwsService | undefined;
  operation: string | undefined;
  params: Record<string, string>;
  /** For REST routes: the decoded path parameter (function name, model id). */
  resource?: string;
}

export function credentialScopeService(auth: string | undefined): { service?: string; region?: string } {
  if (!auth) return {};
  const m = /Credential=[^/,\s]+\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/.exec(auth);
  return m ? { region: m[1], service: m[2] } : {};
}

export function route(req: IncomingMessage, rawPath: string, body: string): Route {
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

export function headerString(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function listParam(params: Record<string, string>, prefix: string): string[] {
  const out: [number, string][] = [];
  const p = `${prefix}.`;
  for (const [k, v] of Object.entries(params)) {
    if (!k.startsWith(p)) continue;
    const n = Number(k.slice(p.length));
    if (Number.isInteger(n) && n > 0) out.push([n, v]);
  }
  return out.sort((a, b) => a[0] - b[0]).map(([, v]) => v);
}

export function queryResponse(
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

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function unknownAction(action: string): AwsError {
  return new AwsError(400, 'InvalidAction', `The action ${action} is not valid for this web service.`, true);
}

/**
 * SigV4 (or, for Bedrock, an API key as a bearer token): the credential scope must name the service,
 * and the region when the server was given one.
 */
export function checkAuthorization(
  req: IncomingMessage,
  service: AwsService,
  region: string | undefined,
): void {
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
    if (region && scope.region !== region) {
      throw new AwsError(
        403,
        'SignatureDoesNotMatch',
        `Credential should be scoped to a valid region, not '${scope.region ?? ''}'`,
        true,
      );
    }
  }
}

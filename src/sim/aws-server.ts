/**
 * The simulated AWS endpoint: one loopback HTTP server that the real AWS SDK v3 clients reach
 * through `AWS_ENDPOINT_URL` (or `endpoint`). EC2, Auto Scaling, SNS, CloudWatch, Lambda, Bedrock
 * Runtime and EKS share the host; `aws-protocol.ts` tells them apart and answers errors in each
 * one's shape. The handlers are factories over one `AwsContext`: `aws-ec2.ts` (instances, Auto
 * Scaling, node groups), `aws-notify.ts` (CloudWatch, SNS, Lambda), `aws-bedrock.ts` (Converse),
 * with faults from `aws-faults.ts`. Effects on instances go through `CloudEffects`; what the
 * notifier sends is kept in `state`.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { type BedrockScripts, createBedrockHandler } from './aws-bedrock.js';
import { type AwsContext, createAwsContext } from './aws-context.js';
import { createEc2Handlers } from './aws-ec2.js';
import { type AwsFaults, serveAwsFault } from './aws-faults.js';
import { createNotifyHandlers, type LambdaResponder, type SimAwsState } from './aws-notify.js';
import { AwsError, checkAuthorization, errorReply, type Reply, type Route, route } from './aws-protocol.js';
import type { CloudEffects } from './cloud-effects.js';
import { BodyError, headerRecord, listen, newRequestId, pathAndQuery, readBody, send } from './http-util.js';
import { type RecordedRequest, RequestLog } from './recorder.js';

// The simulator's AWS surface, as importers have always reached it.
export type { BedrockAnswer, BedrockScript, ConverseRequest } from './aws-bedrock.js';
export { BedrockScripts, SIM_BEDROCK_MODELS, simModelRefusal } from './aws-bedrock.js';
export type { AwsFault } from './aws-faults.js';
export { AwsFaults } from './aws-faults.js';
export type { LambdaInvocation, LambdaResponder, SimAwsState, SnsMessageAttribute } from './aws-notify.js';
export { LIMITS, MetricDatum } from './aws-notify.js';
export type { AwsService } from './aws-protocol.js';
export { AWS_SERVICES } from './aws-protocol.js';

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

/** Routes a request to its service's handler after the checks every service makes, in the order AWS makes them. */
function createDispatch(ctx: AwsContext) {
  const { ec2, autoscaling, describeNodegroup } = createEc2Handlers(ctx);
  const { sns, cloudwatch, lambda } = createNotifyHandlers(ctx);
  const converse = createBedrockHandler(ctx);

  return async function dispatch(
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

    checkAuthorization(req, service, ctx.options.region);
    await serveAwsFault(ctx.faults, ctx.timers, service, operation);

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
  };
}

export async function startSimAws(effects: CloudEffects, opts: SimAwsOptions = {}): Promise<SimAws> {
  const log = opts.log ?? new RequestLog();
  const ctx = createAwsContext(effects, { region: opts.region, stateLimit: opts.stateLimit });
  const dispatch = createDispatch(ctx);

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
    () => ctx.timers.clear(),
  );

  return {
    url: started.origin,
    log,
    state: ctx.state,
    faults: ctx.faults,
    bedrock: ctx.bedrock,
    lambda: {
      respond(fn) {
        ctx.lambdaResponder = fn;
      },
    },
    close: started.close,
  };
}

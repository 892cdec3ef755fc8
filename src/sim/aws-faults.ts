/**
 * Fault injection for the simulated AWS endpoint: queued per service (and optionally per operation),
 * answered in the error code and wording the real service uses for that status.
 */

import { AwsError, type AwsService, SIGNING_NAME } from './aws-protocol.js';
import type { PendingTimers } from './http-util.js';

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

/** Serves the first queued fault for this request, if any: waits out its delay, then throws its error. */
export async function serveAwsFault(
  faults: AwsFaults,
  timers: PendingTimers,
  service: AwsService,
  operation: string,
): Promise<void> {
  const fault = faults.take(service, operation);
  if (fault) {
    if (fault.delayMs) await timers.wait(fault.delayMs);
    if (fault.status !== undefined || fault.code !== undefined) {
      const status = fault.status ?? 500;
      const code = fault.code ?? defaultErrorCode(service, status);
      throw new AwsError(status, code, fault.message ?? faultMessage(service, operation, code));
    }
  }
}

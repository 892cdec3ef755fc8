/**
 * CloudPort on the real AWS SDK v3: EC2 reboot / terminate / describe and Auto Scaling terminate-in-group.
 * The only module that imports @aws-sdk/client-ec2 and @aws-sdk/client-auto-scaling, and only at the first call:
 * those two SDKs are ~10 MB of heap that a process repairing nothing never uses, and at 5,000 nodes the
 * scanning process's memory is what the Deployment's limit has to hold.
 */
import type { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { Logger } from 'pino';
import type { CloudPort, InstanceState } from '../remediate/ports.js';
import { awsClientConfig, classifyAwsError, isThrottling } from './client-config.js';

const INSTANCE_STATES: readonly InstanceState[] = [
  'pending',
  'running',
  'stopping',
  'stopped',
  'shutting-down',
  'terminated',
];
const GONE = new Set<InstanceState>(['shutting-down', 'terminated']);
const NOT_FOUND = 'InvalidInstanceID.NotFound';

/** A failed AWS call: `code` is the AWS error code (`RequestLimitExceeded`, `InvalidInstanceID.NotFound` …). */
export class CloudApiError extends Error {
  override readonly name = 'CloudApiError';
  constructor(
    message: string,
    readonly code: string,
    readonly operation: string,
    readonly instanceId: string,
    readonly retryable: boolean,
    readonly status?: number,
  ) {
    super(message);
  }
}

function codeOf(error: unknown): string | undefined {
  return error !== null && typeof error === 'object' && 'name' in error && typeof error.name === 'string'
    ? error.name
    : undefined;
}

/** The IAM action behind each call, so a denial names what to grant. */
const IAM_ACTION: Record<string, string> = {
  RebootInstances: 'ec2:RebootInstances',
  CreateTags: 'ec2:CreateTags',
  TerminateInstances: 'ec2:TerminateInstances',
  DescribeInstances: 'ec2:DescribeInstances',
  TerminateInstanceInAutoScalingGroup: 'autoscaling:TerminateInstanceInAutoScalingGroup',
  DescribeAutoScalingInstances: 'autoscaling:DescribeAutoScalingInstances',
};

/** A missing permission: the same call fails the same way until someone changes the IAM policy. */
const DENIED = new Set([
  'UnauthorizedOperation',
  'AccessDenied',
  'AccessDeniedException',
  'AuthFailure',
  'OptInRequired',
]);
/** The instance is gone (or never was): asking again cannot bring it back. */
const NO_INSTANCE = new Set([NOT_FOUND, 'InvalidInstanceID.Malformed']);

const serviceOf = (operation: string): string =>
  IAM_ACTION[operation]?.startsWith('autoscaling') ? 'Auto Scaling' : 'EC2';

/**
 * One clear sentence per failure, for the thread and the log: what to do about it comes first, the AWS code
 * and status after. Throttling and 5xx reach here only once the SDK's own retries (with backoff) ran out.
 */
function wrap(operation: string, instanceId: string, error: unknown): CloudApiError {
  if (error instanceof CloudApiError) return error;
  const f = classifyAwsError(error);
  const http = f.status !== undefined ? `, HTTP ${f.status}` : '';
  const service = serviceOf(operation);
  let message: string;
  let retryable = f.retryable;
  if (DENIED.has(f.code)) {
    const action = IAM_ACTION[operation] ?? operation;
    message = `gpu-medic's IAM role may not ${action} (${f.code}${http}): grant it in the role's policy (iam/gpu-medic-policy.json); instance ${instanceId}`;
    retryable = false;
  } else if (NO_INSTANCE.has(f.code)) {
    message = `instance ${instanceId} no longer exists (${f.code} from ${operation})`;
    retryable = false;
  } else if (isThrottling(f.code, f.status)) {
    message = `${service} kept throttling gpu-medic (${f.code}${http}) on ${operation} ${instanceId}, after retries with backoff`;
    retryable = true;
  } else if (f.status !== undefined && f.status >= 500) {
    message = `${service} had an internal error (${f.code}${http}) on ${operation} ${instanceId}`;
    retryable = true;
  } else {
    message = `${operation} ${instanceId} failed: ${f.code}${f.status !== undefined ? ` (HTTP ${f.status})` : ''}: ${f.message}`;
  }
  return new CloudApiError(message, f.code, operation, instanceId, retryable, f.status);
}

function asInstanceState(name: string | undefined): InstanceState | undefined {
  return INSTANCE_STATES.find((s) => s === name);
}

export interface CloudPortOptions {
  region: string;
  /** Only for tests and explicit overrides: the SDK reads AWS_ENDPOINT_URL(_EC2 / _AUTO_SCALING) itself. */
  endpoint?: string;
  maxAttempts?: number;
  requestTimeoutMs?: number;
  connectionTimeoutMs?: number;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  logger?: Logger;
}

export function createCloudPort(opts: CloudPortOptions): CloudPort {
  const config = awsClientConfig({
    region: opts.region,
    ...(opts.endpoint !== undefined ? { endpoint: opts.endpoint } : {}),
    ...(opts.maxAttempts !== undefined ? { maxAttempts: opts.maxAttempts } : {}),
    ...(opts.requestTimeoutMs !== undefined ? { requestTimeoutMs: opts.requestTimeoutMs } : {}),
    ...(opts.connectionTimeoutMs !== undefined ? { connectionTimeoutMs: opts.connectionTimeoutMs } : {}),
    ...(opts.credentials !== undefined ? { credentials: opts.credentials } : {}),
  });
  const log = opts.logger;
  let loading:
    | Promise<{
        ec2: EC2Client;
        autoScaling: AutoScalingClient;
        Ec2: typeof import('@aws-sdk/client-ec2');
        Asg: typeof import('@aws-sdk/client-auto-scaling');
      }>
    | undefined;
  /** The SDK clients, built at the first call; a failed load is retried by the next call. */
  const sdk = () =>
    (loading ??= Promise.all([import('@aws-sdk/client-ec2'), import('@aws-sdk/client-auto-scaling')]).then(
      ([Ec2, Asg]) => ({
        ec2: new Ec2.EC2Client(config),
        autoScaling: new Asg.AutoScalingClient(config),
        Ec2,
        Asg,
      }),
      (e: unknown) => {
        loading = undefined;
        throw e;
      },
    ));

  async function describeInstance(instanceId: string): Promise<{ state: InstanceState } | undefined> {
    try {
      const { ec2, Ec2 } = await sdk();
      const out = await ec2.send(new Ec2.DescribeInstancesCommand({ InstanceIds: [instanceId] }));
      const instance = (out.Reservations ?? [])
        .flatMap((r) => r.Instances ?? [])
        .find((i) => i.InstanceId === instanceId);
      const state = asInstanceState(instance?.State?.Name);
      return state ? { state } : undefined;
    } catch (e) {
      if (codeOf(e) === NOT_FOUND) return undefined;
      throw wrap('DescribeInstances', instanceId, e);
    }
  }

  return {
    async rebootInstance(instanceId) {
      try {
        const { ec2, Ec2 } = await sdk();
        await ec2.send(new Ec2.RebootInstancesCommand({ InstanceIds: [instanceId] }));
      } catch (e) {
        throw wrap('RebootInstances', instanceId, e);
      }
      log?.info({ instanceId }, 'instance reboot requested');
    },

    async terminateInstance(instanceId) {
      try {
        const { ec2, Ec2 } = await sdk();
        await ec2.send(new Ec2.TerminateInstancesCommand({ InstanceIds: [instanceId] }));
      } catch (e) {
        // EC2 forgets a terminated instance after about an hour: NotFound then means it is long gone.
        if (codeOf(e) !== NOT_FOUND) throw wrap('TerminateInstances', instanceId, e);
        log?.warn({ instanceId }, 'terminate: instance not found, treated as already terminated');
        return;
      }
      log?.info({ instanceId }, 'instance termination requested');
    },

    async terminateInAutoScalingGroup(instanceId) {
      try {
        const { autoScaling, Asg } = await sdk();
        await autoScaling.send(
          new Asg.TerminateInstanceInAutoScalingGroupCommand({
            InstanceId: instanceId,
            ShouldDecrementDesiredCapacity: false,
          }),
        );
      } catch (e) {
        // Auto Scaling answers a ValidationError for an instance it no longer manages: fine if it is going
        // away anyway (a repeated call after a crash), an error if it runs outside any group.
        if (codeOf(e) === 'ValidationError') {
          const current = await describeInstance(instanceId);
          if (!current || GONE.has(current.state)) {
            log?.warn({ instanceId, state: current?.state }, 'ASG terminate: instance already terminating');
            return;
          }
        }
        throw wrap('TerminateInstanceInAutoScalingGroup', instanceId, e);
      }
      log?.info({ instanceId }, 'instance termination in its Auto Scaling group requested');
    },

    describeInstance,

    async tagInstance(instanceId, tags) {
      try {
        const { ec2, Ec2 } = await sdk();
        await ec2.send(
          new Ec2.CreateTagsCommand({
            Resources: [instanceId],
            Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
          }),
        );
      } catch (e) {
        throw wrap('CreateTags', instanceId, e);
      }
      log?.info({ instanceId, tags: Object.keys(tags) }, 'instance tagged');
    },

    async autoScalingGroupOf(instanceId) {
      try {
        const { autoScaling, Asg } = await sdk();
        const out = await autoScaling.send(
          new Asg.DescribeAutoScalingInstancesCommand({ InstanceIds: [instanceId] }),
        );
        return (
          out.AutoScalingInstances?.find((i) => i.InstanceId === instanceId)?.AutoScalingGroupName ||
          undefined
        );
      } catch (e) {
        throw wrap('DescribeAutoScalingInstances', instanceId, e);
      }
    },
  };
}

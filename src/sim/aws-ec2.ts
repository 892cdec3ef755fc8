/**
 * EC2 (DescribeInstances, RebootInstances, TerminateInstances, tags), Auto Scaling
 * (DescribeAutoScalingInstances, TerminateInstanceInAutoScalingGroup) and EKS DescribeNodegroup:
 * the calls that act on instances, answered from and applied to the simulated cluster.
 */

import { randomUUID } from 'node:crypto';
import type { AwsContext } from './aws-context.js';
import {
  AwsError,
  JSON_REST,
  listParam,
  queryResponse,
  type Reply,
  unknownAction,
  XML_NS,
  xmlReply,
} from './aws-protocol.js';
import type { InstanceState, SimInstance } from './cloud-effects.js';
import { ec2TagAction } from './ec2-tags.js';
import { xmlTag } from './http-util.js';

const INSTANCE_ID = /^i-[0-9a-zA-Z]{1,32}$/;

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

export function createEc2Handlers(ctx: Pick<AwsContext, 'effects'>) {
  const { effects } = ctx;

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

  // ── EKS ──
  function describeNodegroup(clusterName: string, nodegroupName: string): Reply {
    const nodegroup = effects.describeNodegroup?.(clusterName, nodegroupName);
    if (!nodegroup) {
      throw new AwsError(404, 'ResourceNotFoundException', `No node group found for name: ${nodegroupName}.`);
    }
    return { status: 200, contentType: JSON_REST, body: JSON.stringify({ nodegroup }) };
  }

  return { ec2, autoscaling, describeNodegroup };
}

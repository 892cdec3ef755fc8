/**
 * The seam between the simulated AWS endpoint and the simulated cluster: AWS calls have effects on
 * nodes (a reboot takes a node NotReady then Ready with a new bootID; a termination removes it and a
 * node group brings a replacement). The cluster model implements this; the AWS fake only calls it.
 */
export type InstanceState = 'pending' | 'running' | 'stopping' | 'stopped' | 'shutting-down' | 'terminated';

export interface SimInstance {
  instanceId: string;
  instanceType: string;
  availabilityZone: string;
  state: InstanceState;
  /** Auto Scaling group for managed-node-group instances; undefined for Karpenter/standalone ones. */
  autoScalingGroup?: string;
  /**
   * An EC2 managed instance's operator (`eks.amazonaws.com` for EKS Auto Mode): IAM-enforced restrictions
   * refuse the account's RebootInstances / TerminateInstances on it, whatever its permissions.
   */
  operator?: string;
  privateDnsName: string;
  launchTime: string;
  tags: Record<string, string>;
}

export interface CloudEffects {
  describeInstances(instanceIds?: string[]): SimInstance[];
  /** Returns false for an unknown or terminated instance (the fake answers InvalidInstanceID.NotFound). */
  rebootInstance(instanceId: string): boolean;
  /**
   * EKS DescribeNodegroup's `nodegroup` object (JSON as the API sends it), or undefined for an unknown
   * cluster or node group. Optional: a fake without node groups answers ResourceNotFoundException.
   */
  describeNodegroup?(clusterName: string, nodegroupName: string): Record<string, unknown> | undefined;
  /**
   * EC2 CreateTags on one instance: adds or overwrites the tags. Returns false for an unknown instance.
   * Optional: a fake without it answers CreateTags with an error.
   */
  tagInstance?(instanceId: string, tags: Record<string, string>): boolean;
  /** Returns the state before the call, or undefined for an unknown instance. */
  terminateInstance(
    instanceId: string,
    opts: { decrementDesiredCapacity: boolean },
  ): InstanceState | undefined;
}

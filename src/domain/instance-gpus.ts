/**
 * Physical NVIDIA GPUs per EC2 instance type: what the hardware has, whatever the node reports.
 *
 * Labels and capacity count what NVML sees, so a GPU that fell off the bus (or did not come back after a
 * reboot) lowers GFD's `nvidia.com/gpu.count`, the device plugin's `nvidia.com/gpu` and the exporter's GPU
 * list alike: only a table of the hardware can say "this p5 should have 8". Counts are EC2's
 * `GpuInfo.Gpus[].Count` (DescribeInstanceTypes); the fractional-GPU types (g6f, gr6f), where EC2 reports a
 * count of 0 and a `LogicalGpuCount` of 1, carry the one vGPU device the guest sees.
 *
 * Non-NVIDIA accelerators (g4ad's AMD GPUs, Inferentia, Trainium, Gaudi) are deliberately absent.
 */
const sizes = (family: string, counts: Record<string, number>): [string, number][] =>
  Object.entries(counts).map(([size, n]) => [`${family}.${size}`, n]);

const one = (family: string, list: string[]): [string, number][] =>
  list.map((size) => [`${family}.${size}`, 1]);

export const EC2_INSTANCE_GPUS: Readonly<Record<string, number>> = Object.freeze(
  Object.fromEntries([
    // P family: training (NVSwitch HGX boards from p4d on).
    ...sizes('p3', { '2xlarge': 1, '8xlarge': 4, '16xlarge': 8 }),
    ...sizes('p3dn', { '24xlarge': 8 }),
    ...sizes('p4d', { '24xlarge': 8 }),
    ...sizes('p4de', { '24xlarge': 8 }),
    ...sizes('p5', { '4xlarge': 1, '48xlarge': 8 }),
    ...sizes('p5e', { '48xlarge': 8 }),
    ...sizes('p5en', { '48xlarge': 8 }),
    ...sizes('p6-b200', { '48xlarge': 8 }),
    ...sizes('p6-b300', { '48xlarge': 8 }),
    ...sizes('p6e-gb200', { '36xlarge': 4 }),
    // G family: inference and graphics.
    ...sizes('g3', { '4xlarge': 1, '8xlarge': 2, '16xlarge': 4 }),
    ...sizes('g3s', { xlarge: 1 }),
    ...one('g4dn', ['xlarge', '2xlarge', '4xlarge', '8xlarge', '16xlarge']),
    ...sizes('g4dn', { '12xlarge': 4, metal: 8 }),
    ...one('g5', ['xlarge', '2xlarge', '4xlarge', '8xlarge', '16xlarge']),
    ...sizes('g5', { '12xlarge': 4, '24xlarge': 4, '48xlarge': 8 }),
    ...one('g5g', ['xlarge', '2xlarge', '4xlarge', '8xlarge']),
    ...sizes('g5g', { '16xlarge': 2, metal: 2 }),
    ...one('g6', ['xlarge', '2xlarge', '4xlarge', '8xlarge', '16xlarge']),
    ...sizes('g6', { '12xlarge': 4, '24xlarge': 4, '48xlarge': 8 }),
    ...one('gr6', ['4xlarge', '8xlarge']),
    ...one('g6e', ['xlarge', '2xlarge', '4xlarge', '8xlarge', '16xlarge']),
    ...sizes('g6e', { '12xlarge': 4, '24xlarge': 4, '48xlarge': 8 }),
    ...one('g6f', ['large', 'xlarge', '2xlarge', '4xlarge']),
    ...one('gr6f', ['4xlarge']),
    ...one('g7e', ['2xlarge', '4xlarge', '8xlarge']),
    ...sizes('g7e', { '12xlarge': 2, '24xlarge': 4, '48xlarge': 8 }),
  ]),
);

/** Physical GPUs of an EC2 instance type; undefined when the table does not know the type. */
export function instanceTypeGpus(instanceType: string | undefined): number | undefined {
  if (!instanceType) return undefined;
  return Object.hasOwn(EC2_INSTANCE_GPUS, instanceType) ? EC2_INSTANCE_GPUS[instanceType] : undefined;
}

/**
 * Instance types whose GPUs sit on an NVSwitch fabric (HGX boards). There NVIDIA resets the GPUs and the
 * switches together: `nvidia-smi -r -i N` for one GPU is refused, and a reset takes the whole node's GPUs.
 * p5.4xlarge (one H100, no switch) and p6e-gb200 (NVL72, reset by the rack's own tooling) are not listed.
 */
export const NVSWITCH_INSTANCE_TYPES: ReadonlySet<string> = new Set([
  'p4d.24xlarge',
  'p4de.24xlarge',
  'p5.48xlarge',
  'p5e.48xlarge',
  'p5en.48xlarge',
  'p6-b200.48xlarge',
]);

/** Whether one GPU of this instance type can be reset alone (false on NVSwitch systems). */
export function perGpuResetAllowed(instanceType: string | undefined): boolean {
  return !(instanceType !== undefined && NVSWITCH_INSTANCE_TYPES.has(instanceType));
}

/** What the simulator needs to know about an EC2 instance type. */
export interface InstanceTypeInfo {
  gpus: number;
  gpuModel: string;
  cpu: number;
  memoryGiB: number;
  efa: number;
}

export const INSTANCE_TYPES: Record<string, InstanceTypeInfo> = {
  'p5.48xlarge': { gpus: 8, gpuModel: 'NVIDIA H100 80GB HBM3', cpu: 192, memoryGiB: 2048, efa: 32 },
  'p5e.48xlarge': { gpus: 8, gpuModel: 'NVIDIA H200', cpu: 192, memoryGiB: 2048, efa: 32 },
  'p4d.24xlarge': { gpus: 8, gpuModel: 'NVIDIA A100-SXM4-40GB', cpu: 96, memoryGiB: 1152, efa: 4 },
  'p4de.24xlarge': { gpus: 8, gpuModel: 'NVIDIA A100-SXM4-80GB', cpu: 96, memoryGiB: 1152, efa: 4 },
  'g5.48xlarge': { gpus: 8, gpuModel: 'NVIDIA A10G', cpu: 192, memoryGiB: 768, efa: 1 },
  'g6e.48xlarge': { gpus: 8, gpuModel: 'NVIDIA L40S', cpu: 192, memoryGiB: 1536, efa: 4 },
  'm5.xlarge': { gpus: 0, gpuModel: '', cpu: 4, memoryGiB: 16, efa: 0 },
};

export function instanceTypeInfo(type: string): InstanceTypeInfo {
  return (
    INSTANCE_TYPES[type] ?? { gpus: 8, gpuModel: 'NVIDIA H100 80GB HBM3', cpu: 192, memoryGiB: 2048, efa: 0 }
  );
}

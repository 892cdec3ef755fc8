/**
 * Short XID names as dcgm-exporter prints them in the `err_msg` label (they follow NVIDIA's XID
 * documentation) — only the codes the simulator is likely to inject; others fall back to a generic text.
 */
const xidNames: Record<number, string> = {
  0: 'No Error',
  8: 'GPU stopped processing',
  13: 'Graphics Engine Exception',
  31: 'GPU memory page fault',
  32: 'Invalid or corrupted push buffer stream',
  43: 'GPU stopped processing',
  45: 'Preemptive cleanup, due to previous errors -- Most likely to see when running multiple cuda',
  46: 'GPU stopped processing',
  48: 'Double Bit ECC Error',
  61: 'Internal micro-controller breakpoint/warning',
  62: 'Internal micro-controller halt',
  63: 'ECC page retirement or row remapping recording event',
  64: 'ECC page retirement or row remapper recording failure',
  69: 'Graphics Engine class error',
  74: 'NVLINK Error',
  79: 'GPU has fallen off the bus',
  92: 'High single-bit ECC error rate',
  94: 'Contained ECC error',
  95: 'Uncontained ECC error',
  109: 'Context Switch Timeout Error',
  119: 'GSP RPC Timeout',
  120: 'GSP Error',
  121: 'C2C Link Error',
  140: 'Unrecovered ECC Error',
  143: 'GPU Initialization Failure',
  149: 'NVLINK: NETIR Error',
  154: 'GPU Recovery Action Changed',
};

export function xidName(xid: number): string {
  return xidNames[xid] ?? 'Unknown Error';
}

/** The text after `pid=…, name=…,` in a kernel `NVRM: Xid` line, realistic for the common codes. */
const kernelTexts: Record<number, string> = {
  13: 'Graphics SM Warp Exception on (GPC 1, TPC 3, SM 0): Out Of Range Address',
  31: 'Ch 00000007, intr 00000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_6 faulted @ 0x7f5a_e7504000. Fault is of type FAULT_PDE ACCESS_TYPE_VIRT_READ',
  43: 'Ch 00000008',
  48: 'An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at physAddr 0x7fdf0de80 partition 5, subpartition 1',
  63: 'Row Remapper: New row marked for remapping, reset gpu to activate.',
  64: 'Row Remapper: Failed to remap row, reset gpu to attempt remap.',
  74: 'NVLink: fatal error detected on link 14(0x0, 0x0, 0x10000, 0x0, 0x0, 0x0, 0x0)',
  79: 'GPU has fallen off the bus.',
  92: 'High single-bit ECC error rate',
  94: 'Contained: SM (0x1). RST: No, D-RST: No',
  95: 'Uncontained: LTC TAG (0x2,0x0). RST: Yes, D-RST: No',
  119: 'Timeout after 6s of waiting for RPC response from GPU4 GSP! Expected function 103 (GSP_RM_ALLOC) (0x2081 0x4).',
};

export function defaultKernelText(xid: number): string {
  return kernelTexts[xid] ?? xidName(xid);
}

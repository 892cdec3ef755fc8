/**
 * Kernel log lines from the NVIDIA driver: `NVRM: Xid (PCI:0000:91:00): 79, pid=…, name=…, text` and the
 * NVSwitch driver's `nvidia-nvswitchN: SXid (PCI:…): 20034, Fatal, …`. Any prefix before the marker is
 * accepted (dmesg `[123.456]`, `dmesg -T` dates, journald `Mar 05 10:00:00 host kernel:`). Lines that are
 * neither are returned in `unparsed` rather than dropped: the LLM may still read them.
 */

export interface KernelXid {
  /** Normalized `dddd:bb:dd` (see normalizePciBusId). */
  pciBusId: string;
  xid: number;
  /** Driver text after the `pid=…, name=…,` part. */
  message: string;
  pid?: string;
  processName?: string;
  /**
   * MIG GPU instance (and compute instance) the driver names on a GPU in MIG mode:
   * `Xid (PCI:0000:01:00 GPU-I:05): 94` or `Xid (PCI:0000:3b:00 GPU-I:01 GPU-CI:02): 13`. The XID is still the
   * physical GPU's (the bus id).
   */
  gpuInstance?: number;
  computeInstance?: number;
  raw: string;
}

export interface KernelSxid {
  pciBusId: string;
  sxid: number;
  /** `Fatal` / `Non-fatal` when the line says so. */
  fatal?: boolean;
  /** `nvidia-nvswitch1`. */
  device?: string;
  message: string;
  raw: string;
}

export interface KernelLogParse {
  xids: KernelXid[];
  sxids: KernelSxid[];
  unparsed: string[];
}

const XID_RE = /NVRM: Xid \(PCI:([0-9a-fA-F:.]+)(?: GPU-I:(\d+))?(?: GPU-CI:(\d+))?\): (\d+)(?:,\s*(.*))?$/;
const SXID_RE = /(?:(nvidia-nvswitch\d+):\s*)?SXid \(PCI:([0-9a-fA-F:.]+)\): (\d+)(?:,\s*(.*))?$/;
const PID_NAME_RE = /^pid=('[^']*'|[^,\s]*),\s*name=([^,]*),\s*/;

/**
 * Kernel lines say `0000:91:00` (domain:bus:device), DCGM says `00000000:91:00.0`: compare on
 * `dddd:bb:dd`, lowercase, with a 4-digit domain and no function.
 */
export function normalizePciBusId(id: string): string {
  const parts = id.trim().toLowerCase().replace(/^pci:/, '').split(':');
  if (parts.length < 2) return id.trim().toLowerCase();
  const devFn = parts.pop() ?? '';
  const bus = parts.pop() ?? '';
  const domain = parts.pop() ?? '0';
  const device = devFn.split('.')[0] ?? devFn;
  const pad = (s: string, n: number) => s.slice(-n).padStart(n, '0');
  return `${pad(domain, 4)}:${pad(bus, 2)}:${pad(device, 2)}`;
}

export function parseKernelXidLine(line: string): KernelXid | undefined {
  const m = XID_RE.exec(line);
  if (!m) return undefined;
  const xid = Number(m[4]);
  if (!Number.isSafeInteger(xid)) return undefined;
  let rest = (m[5] ?? '').trim();
  const out: KernelXid = { pciBusId: normalizePciBusId(m[1] ?? ''), xid, message: '', raw: line };
  if (m[2] !== undefined) out.gpuInstance = Number(m[2]);
  if (m[3] !== undefined) out.computeInstance = Number(m[3]);
  const pn = PID_NAME_RE.exec(rest);
  if (pn) {
    out.pid = (pn[1] ?? '').replace(/^'|'$/g, '');
    out.processName = (pn[2] ?? '').trim();
    rest = rest.slice(pn[0].length);
  }
  out.message = rest;
  return out;
}

export function parseKernelSxidLine(line: string): KernelSxid | undefined {
  const m = SXID_RE.exec(line);
  if (!m) return undefined;
  const sxid = Number(m[3]);
  if (!Number.isSafeInteger(sxid)) return undefined;
  const message = (m[4] ?? '').trim();
  const out: KernelSxid = { pciBusId: normalizePciBusId(m[2] ?? ''), sxid, message, raw: line };
  if (m[1]) out.device = m[1];
  const sev = /^(Fatal|Non-fatal|Nonfatal)\b/i.exec(message);
  if (sev) out.fatal = (sev[1] ?? '').toLowerCase() === 'fatal';
  return out;
}

export function parseKernelXids(text: string): KernelLogParse {
  const out: KernelLogParse = { xids: [], sxids: [], unparsed: [] };
  for (const rawLine of text.split('\n')) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line.trim() === '') continue;
    const xid = parseKernelXidLine(line);
    if (xid) {
      out.xids.push(xid);
      continue;
    }
    const sxid = parseKernelSxidLine(line);
    if (sxid) {
      out.sxids.push(sxid);
      continue;
    }
    out.unparsed.push(line);
  }
  return out;
}

/** True when a line looks like it came from a kernel log about NVIDIA devices (for format detection). */
export function looksLikeKernelLine(line: string): boolean {
  return line.includes('NVRM:') || line.includes('SXid (PCI:');
}

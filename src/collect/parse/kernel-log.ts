/**
 * Kernel log lines from the NVIDIA driver: `NVRM: Xid (PCI:0000:91:00): 79, pid=…, name=…, text` (on a MIG
 * GPU `NVRM: Xid (PCI:0000:01:00 GPU-I:05): 94, …` or `(PCI:0000:3b:00 GPU-I:01 GPU-CI:02)`) and the
 * NVSwitch driver's `nvidia-nvswitchN: SXid (PCI:…): 20034, Fatal, …`. Any prefix before the marker is
 * accepted (dmesg `[123.456]`, `dmesg -T` dates, journald `Mar 05 10:00:00 host kernel:`).
 *
 * The input may be a whole `dmesg` or `journalctl -k`: boot lines (ACPI, PCI, memory, network …) are not
 * about GPUs, and the NVIDIA driver prints informational lines at every load (its banner, module taint,
 * nvidia-modeset/uvm/drm). Those are counted in `ignored`: a log with no fault must read as healthy. Any
 * other line that mentions the NVIDIA stack goes to `unparsed` rather than being dropped: it may be a
 * fault the rules do not know (e.g. "GPU has fallen off the bus" without an Xid), and the LLM reads it.
 */

export interface KernelXid {
  /** Normalized `dddd:bb:dd` (see normalizePciBusId). */
  pciBusId: string;
  xid: number;
  /** Driver text after the `pid=…, name=…,` part. */
  message: string;
  pid?: string;
  processName?: string;
  /** MIG GPU instance (`GPU-I:05`) the line names; the XID is still a fault of the physical GPU. */
  gpuInstance?: number;
  /** MIG compute instance (`GPU-CI:02`). */
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
  /** Lines about the NVIDIA stack that are neither an Xid nor known to be benign. */
  unparsed: string[];
  /** Lines known not to be GPU faults: non-GPU boot/kernel lines, the driver's informational lines. */
  ignored: number;
}

const XID_RE =
  /NVRM: Xid \(PCI:([0-9a-fA-F:.]+)(?:\s+GPU-I:(\d+))?(?:\s+GPU-CI:(\d+))?\): (\d+)(?:,\s*(.*))?$/;
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

// ---------------------------------------------------------------- whole logs

/** `[    3.123456] `, `[Thu Dec  3 09:12:01 2026] ` (dmesg -T). */
const DMESG_PREFIX_RE = /^\[\s*(?:\d+\.\d+|[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4})\]\s?/;
/**
 * journalctl: `Dec 03 09:12:01 ip-10-0-1-2 kernel: ` (`-o short`, `short-precise` adds `.123456`), `-o short-full`
 * `Thu 2026-12-03 09:12:01 UTC host kernel: `, `-o short-iso[-precise]` `2026-12-03T09:12:01+0000 host kernel: `.
 */
const JOURNAL_PREFIX_RE =
  /^(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)?|[A-Z][a-z]{2} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? [A-Z]{2,5}|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?) \S+ [^\s:]+?(?:\[\d+\])?: /;
/** journalctl's own lines: `-- Logs begin at …`, `-- Boot 1a2b… --`, `-- No entries --`. */
const JOURNAL_META_RE = /^-- (?:Logs begin at|Journal begins at|Boot [0-9a-f]+ --|Reboot --|No entries --)/;

/** The part of a log line after its dmesg/journal prefix (the line itself when it has none). */
export function kernelMessage(line: string): string {
  return line.replace(JOURNAL_PREFIX_RE, '').replace(DMESG_PREFIX_RE, '');
}

/** True when a line carries a dmesg or journalctl prefix (for format detection of a whole log). */
export function hasKernelLogPrefix(line: string): boolean {
  return DMESG_PREFIX_RE.test(line) || JOURNAL_PREFIX_RE.test(line) || JOURNAL_META_RE.test(line);
}

/** Words that tie a line to the GPU stack; a line without any is not about GPUs. */
const GPU_RELATED_RE = /nvrm|nvidia|\bnv-|nvlink|nvswitch|fabric ?manager|\bgpu|\bxid\b|dcgm|\bcuda\b/i;

/**
 * What the NVIDIA stack prints on every healthy boot (driver 5xx, open and proprietary modules). Matched on
 * the message after the prefix; anything not listed here stays `unparsed`.
 */
const BENIGN_RES: readonly RegExp[] = [
  /^nvidia: loading out-of-tree module taints kernel/i,
  /^nvidia: module (?:license '.*' taints kernel|verification failed)/i,
  /^nvidia[-_]\w+: module uses symbols from proprietary module/i,
  /^nvidia-nvlink: Nvlink Core is being initialized/i,
  /^nvidia [0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.\d: (?:enabling device|vgaarb: |PCI INT|irq \d+ for MSI)/i,
  /^NVRM: loading NVIDIA UNIX /i,
  /^nvidia-modeset: Loading NVIDIA (?:UNIX Open )?Kernel Mode Setting Driver/i,
  /^nvidia-uvm: Loaded the UVM driver/i,
  /^\[drm\] (?:\[nvidia-drm\] \[GPU ID 0x[0-9a-f]+\] Loading driver|Initialized nvidia-drm )/i,
  /^nvidia-nvswitch\d*: Probing device /i,
  /^NVRM: GPU at PCI:[0-9a-f:.]+: GPU-[0-9a-f-]+\s*$/i,
  /^NVRM: GPU Board Serial Number:/i,
  /^NVRM: Persistence mode is deprecated/i,
  /^NVRM: nvidia_open\b/i,
  /^(?:Verbose syslog connection opened|Now running with user ID|Started \(\d+\)|PID file (?:un)?locked)/i,
  /^device [0-9a-f:.]+ - (?:registered|persistence mode enabled)/i,
  // systemd progress lines about NVIDIA units ("Starting NVIDIA Persistence Daemon…"); failures are not.
  /^(?:Starting|Started|Finished|Reached target|Listening on) (?!.*fail)/i,
];

function isBenign(message: string): boolean {
  return BENIGN_RES.some((re) => re.test(message));
}

export function parseKernelXids(text: string): KernelLogParse {
  const out: KernelLogParse = { xids: [], sxids: [], unparsed: [], ignored: 0 };
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
    const message = kernelMessage(line);
    if (JOURNAL_META_RE.test(line) || !GPU_RELATED_RE.test(message) || isBenign(message)) {
      out.ignored++;
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

import { describe, expect, it } from 'vitest';
import { DEFAULT_FAMILIES, EXTRA_FAMILIES, HEALTH_WATCHES, renderExporterMetrics } from './dcgm-exporter.js';
import { SeededRandom } from './seeded-random.js';
import { makeGpu, type SimGpu } from './sim-gpu.js';

const host = 'ip-10-0-12-34.ec2.internal';
const gpus = (): SimGpu[] => {
  const rng = new SeededRandom(3);
  return Array.from({ length: 8 }, (_, i) => makeGpu(i, rng));
};

/** Parses `NAME{labels} value` lines into records (a tiny exposition reader for assertions). */
function samples(text: string): { name: string; labels: Record<string, string>; value: string }[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^([A-Z_]+)\{(.*)\} (\S+)$/.exec(l);
      if (!m) throw new Error(`bad line: ${l}`);
      const labels = Object.fromEntries(
        [...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]),
      );
      return { name: m[1] ?? '', labels, value: m[3] ?? '' };
    });
}

describe('renderExporterMetrics', () => {
  it('renders every default family with HELP, TYPE and the full label set', () => {
    const text = renderExporterMetrics(host, gpus());
    // Size of one 8-GPU H100 scrape (simulated): ~51 KB with the stock counters, ~103 KB with the full set.
    for (const f of DEFAULT_FAMILIES) {
      expect(text).toContain(`# HELP ${f.name} ${f.help}\n# TYPE ${f.name} ${f.type}\n`);
    }
    for (const f of EXTRA_FAMILIES) expect(text).not.toContain(f.name);
    const temp = samples(text).filter((s) => s.name === 'DCGM_FI_DEV_GPU_TEMP');
    expect(temp).toHaveLength(8);
    expect(Object.keys(temp[0]?.labels ?? {})).toEqual([
      'gpu',
      'UUID',
      'pci_bus_id',
      'device',
      'modelName',
      'Hostname',
      'DCGM_FI_DRIVER_VERSION',
    ]);
    expect(temp[0]?.labels).toMatchObject({
      gpu: '0',
      pci_bus_id: '00000000:53:00.0',
      device: 'nvidia0',
      modelName: 'NVIDIA H100 80GB HBM3',
      Hostname: host,
    });
    expect(temp[0]?.labels.UUID).toMatch(
      /^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    );
  });

  it('shows the last XID as a value with err_code and err_msg labels', () => {
    const g = gpus();
    const g5 = g[5] as SimGpu;
    g5.xidLast = 79;
    g5.xidCounts = { 79: 2, 13: 1 };
    const s = samples(renderExporterMetrics(host, g, { counters: 'full' }));
    const xid = s.filter((x) => x.name === 'DCGM_FI_DEV_XID_ERRORS');
    expect(xid.find((x) => x.labels.gpu === '5')).toMatchObject({
      value: '79',
      labels: { err_code: '79', err_msg: 'GPU has fallen off the bus' },
    });
    expect(xid.find((x) => x.labels.gpu === '0')).toMatchObject({
      value: '0',
      labels: { err_msg: 'No Error' },
    });
    // The XID collector: one series per XID in its window, or a single 0 without `xid` on a quiet GPU.
    const counts = s.filter((x) => x.name === 'DCGM_EXP_XID_ERRORS_COUNT');
    expect(counts.filter((c) => c.labels.gpu === '5').map((c) => [c.labels.xid, c.value])).toEqual([
      ['13', '1'],
      ['79', '2'],
    ]);
    expect(counts.find((c) => c.labels.gpu === '0')).toMatchObject({
      value: '0',
      labels: { window_size_in_ms: '300000' },
    });
    expect(counts.find((c) => c.labels.gpu === '0')?.labels.xid).toBeUndefined();
  });

  // Reality first (real-clusters.md, dcgm-exporter etc/default-counters.csv): the stock file ships ECC,
  // retired pages, NVLink error counters and the DCGM_EXP_* collectors commented out.
  it('stock counters (the default) carry no ECC, retired-page, NVLink-error, XID-count or health family', () => {
    const g = gpus();
    (g[2] as SimGpu).eccDbeVolatile = 3;
    (g[2] as SimGpu).xidCounts = { 48: 1 };
    const text = renderExporterMetrics(host, g);
    expect(text).not.toMatch(/^DCGM_FI_DEV_ECC_/m);
    expect(text).not.toMatch(/^DCGM_FI_DEV_RETIRED_/m);
    expect(text).not.toMatch(/^DCGM_FI_DEV_NVLINK_(CRC|REPLAY|RECOVERY)/m);
    expect(text).not.toContain('DCGM_EXP_');
    // What a stock exporter does carry: the last XID, remapped rows, temperatures, NVLink bandwidth.
    for (const name of [
      'DCGM_FI_DEV_XID_ERRORS',
      'DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS',
      'DCGM_FI_DEV_ROW_REMAP_FAILURE',
      'DCGM_FI_DEV_GPU_TEMP',
      'DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL',
    ])
      expect(text).toMatch(new RegExp(`^${name}\\{`, 'm'));
  });

  it('the full counter set adds every ECC, retired-page and NVLink-error family, XID counts and health', () => {
    const text = renderExporterMetrics(host, gpus(), { counters: 'full' });
    for (const f of EXTRA_FAMILIES) expect(text).toMatch(new RegExp(`^${f.name}\\{`, 'm'));
    expect(text).toMatch(/^DCGM_EXP_XID_ERRORS_COUNT\{/m);
    const health = samples(text).filter((x) => x.name === 'DCGM_EXP_GPU_HEALTH_STATUS');
    // One series per GPU and health watch, all passing on a healthy node.
    expect(health).toHaveLength(8 * HEALTH_WATCHES.length);
    expect(health.every((h) => h.value === '0' && h.labels.health_error_code === 'DCGM_FR_OK')).toBe(true);
  });

  it('renders DCGM health as DCGM_EXP_GPU_HEALTH_STATUS: 20 on the failing watch with its DCGM_FR code', () => {
    const g = gpus();
    (g[3] as SimGpu).eccDbeVolatile = 2;
    (g[4] as SimGpu).health = 'warn';
    (g[4] as SimGpu).healthMessage = 'PCIe replay rate exceeded';
    const health = samples(renderExporterMetrics(host, g, { counters: 'full' })).filter(
      (x) => x.name === 'DCGM_EXP_GPU_HEALTH_STATUS' && x.value !== '0',
    );
    expect(
      health.map((h) => [h.labels.gpu, h.labels.health_watch, h.labels.health_error_code, h.value]),
    ).toEqual([
      ['3', 'MEM', 'DCGM_FR_VOLATILE_DBE_DETECTED', '20'],
      ['4', 'PCIE', 'DCGM_FR_UNKNOWN', '10'],
    ]);
  });

  it.each([
    ['eccSbeVolatile', 'DCGM_FI_DEV_ECC_SBE_VOL_TOTAL'],
    ['eccDbeVolatile', 'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL'],
    ['eccDbeAggregate', 'DCGM_FI_DEV_ECC_DBE_AGG_TOTAL'],
    ['retiredPending', 'DCGM_FI_DEV_RETIRED_PENDING'],
    ['rowRemapFailure', 'DCGM_FI_DEV_ROW_REMAP_FAILURE'],
    ['nvlinkCrcFlitErrors', 'DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL'],
    ['nvlinkRecoveryErrors', 'DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL'],
    ['temperatureC', 'DCGM_FI_DEV_GPU_TEMP'],
  ] as const)('renders %s as %s', (field, metric) => {
    const g = gpus();
    (g[2] as SimGpu)[field] = 91;
    const line = samples(renderExporterMetrics(host, g, { counters: 'full' })).find(
      (x) => x.name === metric && x.labels.gpu === '2',
    );
    expect(line?.value).toBe('91');
  });

  it('leaves out a GPU that fell off the bus and adds pod labels for allocated GPUs', () => {
    const g = gpus();
    (g[1] as SimGpu).present = false;
    (g[6] as SimGpu).pod = { namespace: 'ml-team', pod: 'llama-finetune-worker-0', container: 'pytorch' };
    const s = samples(renderExporterMetrics(host, g));
    expect(s.some((x) => x.labels.gpu === '1')).toBe(false);
    const six = s.find((x) => x.name === 'DCGM_FI_DEV_POWER_USAGE' && x.labels.gpu === '6');
    expect(six?.labels).toMatchObject({
      container: 'pytorch',
      namespace: 'ml-team',
      pod: 'llama-finetune-worker-0',
    });
    expect(six?.value).toMatch(/^\d+\.\d{6}$/);
  });
});

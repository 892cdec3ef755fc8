import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderExporterMetrics } from '../../sim/dcgm-exporter.js';
import { SeededRandom } from '../../sim/seeded-random.js';
import { makeGpu } from '../../sim/sim-gpu.js';
import { gpusFromExporter } from './exporter.js';
import { parsePrometheus } from './prometheus.js';

const fixture = (name: string) =>
  readFileSync(new URL(`../../../test/fixtures/${name}`, import.meta.url), 'utf8');
const fromText = (text: string) => gpusFromExporter(parsePrometheus(text));

describe('gpusFromExporter', () => {
  it('maps the EKS H100 sample: 8 GPUs with UUID, bus id, model, temperature, power, utilization', () => {
    const r = fromText(fixture('dcgm-sample-eks-h100-8gpu.prom'));
    expect(r.hostname).toBe('ip-100-64-171-120.ec2.internal');
    expect(r.driverVersion).toBe('580.105.08');
    expect(r.gpus.map((g) => g.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(r.gpus[6]).toMatchObject({
      uuid: 'GPU-ca1b8386-093b-60cc-349d-c4a38b9124c0',
      pciBusId: '00000000:B9:00.0',
      model: 'NVIDIA H100 80GB HBM3',
      temperatureC: 31,
      powerW: 115.22,
    });
    // The sample has no XID, ECC or NVLink families: absent, not zero.
    expect(r.gpus[0]?.xidLast).toBeUndefined();
    expect(r.gpus[0]?.eccDbeVolatile).toBeUndefined();
    expect(r.gpus[0]?.nvlinkReplayErrors).toBeUndefined();
    expect(r.errors).toEqual([]);
  });

  it('maps the A800 MIG sample: device values once per physical GPU, instances listed', () => {
    const r = fromText(fixture('dcgm-sample-a800-8gpu-mig.prom'));
    expect(r.gpus).toHaveLength(8);
    expect(r.hostname).toBe('msxf-hpc-64-35-ai');
    expect(r.gpus[0]?.migInstances).toEqual(['3:2g.20gb', '5:2g.20gb', '6:2g.20gb']);
    expect(r.gpus[0]?.temperatureC).toBe(33);
    expect(r.gpus[1]?.migInstances).toBeUndefined();
    expect(r.gpus[0]?.rowRemapFailure).toBeUndefined();
    expect(r.gpus[1]?.rowRemapFailure).toBe(0);
  });

  it('folds an XID reported on one MIG instance into its physical GPU', () => {
    const text = fixture('dcgm-sample-a800-8gpu-mig.prom');
    // The reference sample has no XID: raise one on instance 5 of GPU 0 only (instances 3 and 6 still say 0).
    const xidOnInstance5 = /^(DCGM_FI_DEV_XID_ERRORS\{gpu="0",[^}]*GPU_I_ID="5"[^}]*\}) 0$/m;
    expect(text).toMatch(xidOnInstance5);
    const r = fromText(text.replace(xidOnInstance5, '$1 79'));
    expect(r.gpus.map((g) => g.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(r.gpus[0]).toMatchObject({ xidLast: 79, migInstances: ['3:2g.20gb', '5:2g.20gb', '6:2g.20gb'] });
    expect(r.gpus.slice(1).every((g) => g.xidLast === 0)).toBe(true);
    expect(r.errors).toEqual([]);
  });

  it('reads the err_code/err_msg sample (two nodes in one file) as XID 0 = none', () => {
    const r = fromText(fixture('dcgm-sample-xid-errcode-labels.prom'));
    expect(r.gpus).toHaveLength(2);
    expect(r.gpus.every((g) => g.xidLast === 0 && g.xids === undefined)).toBe(true);
  });

  const labels = (gpu: string, extra = '') =>
    `{gpu="${gpu}",UUID="GPU-${gpu}",pci_bus_id="00000000:0${gpu}:00.0",hostname="n1"${extra}}`;

  it('treats DCGM_FI_DEV_XID_ERRORS as the last XID code (never a count) and keeps err_msg', () => {
    const r = fromText(
      `DCGM_FI_DEV_XID_ERRORS${labels('3', ',err_code="79",err_msg="GPU has fallen off the bus"')} 79\n`,
    );
    expect(r.hostname).toBe('n1');
    expect(r.gpus[0]).toMatchObject({
      index: 3,
      xidLast: 79,
      xids: [{ xid: 79, message: 'GPU has fallen off the bus' }],
    });
    expect(r.gpus[0]?.xidCount).toBeUndefined();
  });

  it('lists the signal families a scrape carried: the real H100 sample has temperatures only', () => {
    expect(fromText(fixture('dcgm-sample-eks-h100-8gpu.prom')).signals).toEqual(['thermal']);
    // The MIG sample carries the last XID, remapped rows and temperatures — no ECC, retired pages or NVLink.
    expect(fromText(fixture('dcgm-sample-a800-8gpu-mig.prom')).signals).toEqual([
      'xid',
      'row_remap',
      'thermal',
    ]);
  });

  it.each([
    ['stock', ['xid', 'row_remap', 'thermal']],
    ['full', ['xid', 'xid_count', 'ecc', 'retired_pages', 'row_remap', 'nvlink', 'health', 'thermal']],
  ] as const)('reads the %s counter set as these signal families', (counters, families) => {
    const rng = new SeededRandom(5);
    const gpus = Array.from({ length: 2 }, (_, i) => makeGpu(i, rng));
    const r = fromText(renderExporterMetrics('n1', gpus, { counters }));
    expect(r.signals).toEqual(families);
    expect(r.errors).toEqual([]);
    if (counters === 'stock') expect(r.gpus[0]?.eccDbeVolatile).toBeUndefined();
    else expect(r.gpus[0]).toMatchObject({ eccDbeVolatile: 0, health: 'pass', xidCount: 0 });
  });

  it('does not count NVLink bandwidth as NVLink error coverage', () => {
    const r = fromText(`DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL${labels('0')} 12345\n`);
    expect(r.gpus).toHaveLength(1);
    expect(r.signals).toEqual([]);
  });

  it('reads a quiet DCGM_EXP_XID_ERRORS_COUNT (one 0 without an xid label) as counted, none', () => {
    const r = fromText(`DCGM_EXP_XID_ERRORS_COUNT${labels('2', ',window_size_in_ms="300000"')} 0\n`);
    expect(r.errors).toEqual([]);
    expect(r.signals).toEqual(['xid_count']);
    expect(r.gpus[0]).toMatchObject({ index: 2, xidCount: 0 });
    expect(r.gpus[0]?.xids).toBeUndefined();
  });

  it('reads DCGM_EXP_GPU_HEALTH_STATUS: the worst watch is the health, each non-passing watch an incident', () => {
    const h = (gpu: string, watch: string, code: string, v: number) =>
      `DCGM_EXP_GPU_HEALTH_STATUS${labels(gpu, `,health_error_code="${code}",health_watch="${watch}"`)} ${v}`;
    const r = fromText(
      [
        h('0', 'PCIE', 'DCGM_FR_OK', 0),
        h('0', 'MEM', 'DCGM_FR_VOLATILE_DBE_DETECTED', 20),
        h('0', 'THERMAL', 'DCGM_FR_CLOCK_THROTTLE_THERMAL', 10),
        h('1', 'PCIE', 'DCGM_FR_OK', 0),
        h('1', 'MEM', 'DCGM_FR_OK', 0),
        h('2', 'NVLINK', 'DCGM_FR_OK', 10),
      ].join('\n'),
    );
    expect(r.errors).toEqual([]);
    expect(r.signals).toEqual(['health']);
    expect(r.gpus[0]).toMatchObject({
      health: 'fail',
      healthIncidents: [
        { severity: 'fail', system: 'MEM', code: 'DCGM_FR_VOLATILE_DBE_DETECTED' },
        { severity: 'warn', system: 'THERMAL', code: 'DCGM_FR_CLOCK_THROTTLE_THERMAL' },
      ],
    });
    expect(r.gpus[1]).toMatchObject({ health: 'pass' });
    expect(r.gpus[1]?.healthIncidents).toBeUndefined();
    // A warning without a DCGM_FR code keeps a readable message and no code.
    expect(r.gpus[2]?.healthIncidents).toEqual([
      { severity: 'warn', system: 'NVLINK', message: 'the NVLINK health watch reports a warning' },
    ]);
  });

  it('refuses a health status that is not a DCGM health result or has no watch, and keeps the rest', () => {
    const r = fromText(
      [
        `DCGM_EXP_GPU_HEALTH_STATUS${labels('0', ',health_watch="MEM"')} 7`,
        `DCGM_EXP_GPU_HEALTH_STATUS${labels('0')} 20`,
        `DCGM_FI_DEV_GPU_TEMP${labels('0')} 40`,
      ].join('\n'),
    );
    expect(r.errors.map((e) => e.line)).toEqual([1, 2]);
    expect(r.gpus[0]?.health).toBeUndefined();
    expect(r.signals).toEqual(['thermal']);
  });

  it('reads DCGM_EXP_XID_ERRORS_COUNT per code into xids counts and xidCount', () => {
    const r = fromText(
      [
        `DCGM_EXP_XID_ERRORS_COUNT${labels('0', ',xid="13"')} 2`,
        `DCGM_EXP_XID_ERRORS_COUNT${labels('0', ',xid="31"')} 1`,
        `DCGM_FI_DEV_XID_ERRORS${labels('0')} 31`,
      ].join('\n'),
    );
    expect(r.gpus[0]).toMatchObject({
      xidLast: 31,
      xidCount: 3,
      xids: [
        { xid: 13, count: 2 },
        { xid: 31, count: 1 },
      ],
    });
  });

  it('maps ECC, retired pages, row remap, NVLink counters', () => {
    const families: [string, string][] = [
      ['DCGM_FI_DEV_ECC_SBE_VOL_TOTAL', 'eccSbeVolatile'],
      ['DCGM_FI_DEV_ECC_DBE_VOL_TOTAL', 'eccDbeVolatile'],
      ['DCGM_FI_DEV_ECC_SBE_AGG_TOTAL', 'eccSbeAggregate'],
      ['DCGM_FI_DEV_ECC_DBE_AGG_TOTAL', 'eccDbeAggregate'],
      ['DCGM_FI_DEV_RETIRED_SBE', 'retiredPagesSbe'],
      ['DCGM_FI_DEV_RETIRED_DBE', 'retiredPagesDbe'],
      ['DCGM_FI_DEV_RETIRED_PENDING', 'retiredPagesPending'],
      ['DCGM_FI_DEV_ROW_REMAP_FAILURE', 'rowRemapFailure'],
      ['DCGM_FI_DEV_ROW_REMAP_PENDING', 'rowRemapPending'],
      ['DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS', 'uncorrectableRemappedRows'],
      ['DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS', 'correctableRemappedRows'],
      ['DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL', 'nvlinkCrcFlitErrors'],
      ['DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL', 'nvlinkCrcDataErrors'],
      ['DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL', 'nvlinkReplayErrors'],
      ['DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL', 'nvlinkRecoveryErrors'],
      ['DCGM_FI_DEV_MEMORY_TEMP', 'memoryTemperatureC'],
    ];
    const text = families.map(([f], i) => `${f}${labels('1')} ${i + 1}`).join('\n');
    const g = fromText(text).gpus[0] as unknown as Record<string, unknown>;
    families.forEach(([, field], i) => {
      expect(g[field], field).toBe(i + 1);
    });
  });

  it('accepts both Hostname and hostname labels', () => {
    expect(fromText('DCGM_FI_DEV_GPU_TEMP{gpu="0",Hostname="A"} 1').hostname).toBe('A');
    expect(fromText('DCGM_FI_DEV_GPU_TEMP{gpu="0",hostname="b"} 1').hostname).toBe('b');
  });

  it('skips wrong types with an error entry: non-integer gpu label, NaN value, fractional count', () => {
    const r = fromText(
      [
        'DCGM_FI_DEV_GPU_TEMP{gpu="zero"} 30',
        'DCGM_FI_DEV_GPU_TEMP{gpu="1.5"} 30',
        'DCGM_FI_DEV_GPU_TEMP{gpu="1"} NaN',
        'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{gpu="1"} 1.5',
        'DCGM_FI_DEV_XID_ERRORS{gpu="1"} -3',
        'DCGM_FI_DEV_GPU_TEMP{gpu="2"} 40',
      ].join('\n'),
    );
    expect(r.errors.map((e) => e.line)).toEqual([1, 2, 3, 4, 5]);
    expect(r.gpus.find((g) => g.index === 1)?.eccDbeVolatile).toBeUndefined();
    expect(r.gpus.find((g) => g.index === 2)?.temperatureC).toBe(40);
  });

  it('counts a GPU that reports only other DCGM families as present', () => {
    const r = fromText('DCGM_FI_DEV_SM_CLOCK{gpu="4",UUID="GPU-x",modelName="H100"} 1980');
    expect(r.gpus).toEqual([{ index: 4, uuid: 'GPU-x', model: 'H100' }]);
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { snapshotFromDump } from '../collect/parse/dump.js';
import { gpuSeverity } from '../domain/finding.js';
import type { GpuSample, NodeSnapshot } from '../domain/gpu.js';
import { type ClassificationPolicy, defaultClassificationPolicy } from '../domain/policy.js';
import { loadDcgmFrCatalog, loadXidCatalog } from './catalog.js';
import { classifySnapshot, decideXid, type RuleContext } from './rules.js';

const catalog = loadXidCatalog();
const ctx: RuleContext = { catalog, policy: defaultClassificationPolicy, frCodes: loadDcgmFrCatalog() };
const withPolicy = (p: Partial<ClassificationPolicy>): RuleContext => ({
  ...ctx,
  policy: { ...ctx.policy, ...p },
});

const fixture = (name: string) =>
  readFileSync(new URL(`../../test/fixtures/${name}`, import.meta.url), 'utf8');

/**
 * The expected table comes straight from the raw CSV text with a regex — independent of the CSV parser and
 * the catalog loader under test. reset_gpu is expected as reboot (a GPU reset on EKS = drain + reboot).
 */
const rawRows = [
  ...readFileSync(new URL('../../data/xid-catalog.csv', import.meta.url), 'utf8').matchAll(
    /^(\d+),.*?,(critical|warning|info),(none|monitor|restart_app|reset_gpu|reboot|replace),/gm,
  ),
].map((m) => ({
  xid: Number(m[1]),
  severity: m[2] as string,
  action: m[3] === 'reset_gpu' ? 'reboot' : (m[3] as string),
}));
const textDecoded = (xid: number) => xid === 154 || (xid >= 144 && xid <= 150);
const critical = rawRows.filter((r) => r.severity === 'critical' && !textDecoded(r.xid));
const restartApp = rawRows.filter((r) => r.action === 'restart_app' && !textDecoded(r.xid));

const snap = (gpus: GpuSample[], extra: Partial<NodeSnapshot> = {}): NodeSnapshot => ({
  node: 'node-a',
  takenAt: 0,
  source: 'exporter',
  gpus,
  ...extra,
});

describe('XIDs from the catalog', () => {
  it('the independent table is complete', () => {
    expect(rawRows).toHaveLength(172);
    expect(critical.length).toBeGreaterThan(15);
    expect(restartApp.length).toBeGreaterThan(40);
  });

  it.each(critical)('critical XID $xid → XID_CRITICAL_$xid, $action', ({ xid, action }) => {
    const v = classifySnapshot(snap([{ index: 2, xidLast: xid }]), ctx);
    expect(v).toMatchObject({
      category: `XID_CRITICAL_${xid}`,
      severity: 'critical',
      action,
      xid,
      gpu: 2,
      source: 'rules',
    });
    expect(v.findings[0]?.key).toBe(`xid:${xid}:gpu2`);
    expect(v.findings[0]?.ambiguous).toBeUndefined();
  });

  it.each(restartApp)('RESTART_APP XID $xid → XID_WARNING_$xid, warning, restart_app', ({ xid }) => {
    const v = classifySnapshot(snap([{ index: 0, xidLast: xid }]), ctx);
    expect(v).toMatchObject({ category: `XID_WARNING_${xid}`, severity: 'warning', action: 'restart_app' });
  });

  it('an info XID (43) is XID_WARNING_43 with severity info', () => {
    expect(classifySnapshot(snap([{ index: 0, xidLast: 43 }]), ctx)).toMatchObject({
      category: 'XID_WARNING_43',
      severity: 'info',
      action: 'none',
    });
  });

  it('XID 0 and an absent XID field are healthy', () => {
    expect(classifySnapshot(snap([{ index: 0, xidLast: 0 }, { index: 1 }]), ctx).category).toBe('HEALTHY');
  });

  it('an XID not in the catalog is ambiguous, warning, monitor', () => {
    const v = classifySnapshot(snap([{ index: 1, xidLast: 999 }]), ctx);
    expect(v).toMatchObject({ category: 'XID_WARNING_999', severity: 'warning', action: 'monitor' });
    expect(v.findings[0]?.ambiguous).toBe(true);
  });

  it.each([
    [
      79,
      2,
      "GPU 2 reported XID 79 (GPU has fallen off the bus). NVIDIA's recommended recovery: reboot the node (REBOOT).",
    ],
    [
      13,
      0,
      "GPU 0 reported XID 13 (Graphics Engine Exception). NVIDIA's recommended recovery: restart the application (RESTART_APP).",
    ],
    [
      999,
      1,
      'GPU 1 reported XID 999 (an XID not in NVIDIA’s catalog). No recovery is known for it: reported as a warning and watched.',
    ],
  ])('explains XID %i in words, naming the catalog action once', (xid, gpu, text) => {
    const f = classifySnapshot(snap([{ index: gpu, xidLast: xid }]), ctx).findings[0];
    expect(f?.explanation).toBe(text);
    expect(f?.explanation).not.toContain('→');
  });

  it('a reset_gpu XID says RESET_GPU once and what it means on EKS', () => {
    const resetXid = catalog.all().find((e) => e.catalogAction === 'reset_gpu' && !textDecoded(e.xid));
    expect(resetXid).toBeDefined();
    const f = classifySnapshot(snap([{ index: 0, xidLast: resetXid?.xid ?? 0 }]), ctx).findings[0];
    expect(f?.explanation.match(/RESET_GPU/g)).toHaveLength(1);
    expect(f?.explanation).toContain('drain the node and run nvidia-smi --gpu-reset, no reboot');
  });

  it('a policy override wins over the catalog', () => {
    const v = classifySnapshot(
      snap([{ index: 0, xidLast: 79 }]),
      withPolicy({ xid: { 79: { action: 'replace' } } }),
    );
    expect(v).toMatchObject({ category: 'XID_CRITICAL_79', action: 'replace' });
    const down = classifySnapshot(
      snap([{ index: 0, xidLast: 13 }]),
      withPolicy({ xid: { 13: { severity: 'info', action: 'none' } } }),
    );
    expect(down).toMatchObject({ category: 'XID_WARNING_13', severity: 'info', action: 'none' });
  });
});

describe('XID 154 and 144–150 from their text', () => {
  it.each([
    ['GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)', 'critical', 'reboot'],
    ['GPU recovery action changed from 0x0 (None) to 0x2 (Node Reboot Required)', 'critical', 'reboot'],
    ['GPU recovery action changed from 0x0 (None) to 0x4 (Drain and Reset)', 'critical', 'reboot'],
    ['GPU recovery action changed from 0x0 (None) to 0x3 (Drain P2P)', 'warning', 'monitor'],
    ['GPU recovery action changed from 0x1 (GPU Reset Required) to 0x0 (None)', 'info', 'monitor'],
  ])('154 "%s" → %s %s', (message, severity, action) => {
    expect(decideXid(154, message, ctx)).toMatchObject({ severity, action, ambiguous: false });
  });

  // Behaviour change (issue 10): 154 without its action used to be an ambiguous warning (alert only, or
  // whatever a model guessed). The driver may be asking for a reboot: critical, and the policy asks a human.
  it.each([
    ['no text (dmon, a bare code)', undefined],
    ['the exporter’s fixed err_msg', 'GPU Recovery Action Changed'],
  ])('154 with %s is critical, settled, and says a human decides', (_, message) => {
    const d = decideXid(154, message, ctx);
    expect(d).toMatchObject({ severity: 'critical', action: 'reboot', ambiguous: false, textless: true });
    expect(d.basis).toMatch(/human decides/);
  });

  it.each([
    ['0x3 (Drain P2P)', 'XID_WARNING_154', 'warning'],
    ['0x2 (Node Reboot Required)', 'XID_CRITICAL_154', 'critical'],
    ['0x0 (None)', 'XID_WARNING_154', 'info'],
  ])('154 from the exporter and a kernel line on the same GPU: the kernel’s action %s wins', (to, category, severity) => {
    const v = classifySnapshot(
      snap(
        [
          {
            index: 5,
            pciBusId: '00000000:A8:00.0',
            xidLast: 154,
            xids: [{ xid: 154, message: 'GPU Recovery Action Changed' }],
          },
        ],
        {
          logLines: [`NVRM: Xid (PCI:0000:a8:00): 154, GPU recovery action changed from 0x0 (None) to ${to}`],
        },
      ),
      ctx,
    );
    expect(v).toMatchObject({ category, severity, gpu: 5, xid: 154 });
    expect(v.findings.filter((f) => f.xid === 154)).toHaveLength(1);
  });

  it('154 seen only through the exporter: one critical finding that is not left to a model', () => {
    const v = classifySnapshot(
      snap([{ index: 5, xidLast: 154, xids: [{ xid: 154, message: 'GPU Recovery Action Changed' }] }]),
      ctx,
    );
    expect(v).toMatchObject({ category: 'XID_CRITICAL_154', severity: 'critical', action: 'reboot', gpu: 5 });
    expect(v.findings.some((f) => f.ambiguous)).toBe(false);
  });

  it.each([
    [149, 'NETIR_LINK_EVT  Fatal   XC0 i0 Link 09 (0x025525c6 0x00000000)', 'critical', 'reboot'],
    [149, 'NETIR_LINK_EVT Link Fatal XC0 i0 Link 02', 'critical', 'reboot'],
    [145, 'RLW_REMAP Nonfatal XC1 i0 Link 10 (0x00000004 0x00000040)', 'warning', 'monitor'],
    [144, 'SAW_MVB Non-fatal XC0 i0 Link 01', 'warning', 'monitor'],
    [150, 'MSE_WATCHDOG Fatal', 'critical', 'reboot'],
    [146, 'TLW_CTRL Fatal XC0', 'critical', 'reboot'],
  ])('%i "%s" → %s %s', (xid, message, severity, action) => {
    const d = decideXid(xid, message, ctx);
    expect(d).toMatchObject({ severity, action, ambiguous: false });
    expect(d.category).toBe(severity === 'critical' ? `XID_CRITICAL_${xid}` : `XID_WARNING_${xid}`);
  });

  it('a kernel line drives the decision and maps to its GPU by PCI bus id', () => {
    const v = classifySnapshot(
      snap([{ index: 5, pciBusId: '00000008:01:00.0' }], {
        logLines: [
          'NVRM: Xid (PCI:0008:01:00): 154, GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)',
        ],
      }),
      ctx,
    );
    expect(v).toMatchObject({ category: 'XID_CRITICAL_154', gpu: 5, xid: 154 });
    expect(v.findings[0]?.key).toBe('xid:154:gpu5');
  });
});

describe('memory, NVLink, thermal, health', () => {
  it.each([
    [{ eccDbeVolatile: 1 }, 'ECC_ERROR', 'critical', 'reboot', 'ecc_dbe:gpu0'],
    [{ rowRemapFailure: 1 }, 'ECC_ERROR', 'critical', 'reboot', 'row_remap_failure:gpu0'],
    [{ retiredPagesPending: 2 }, 'ECC_ERROR', 'warning', 'monitor', 'retired_pages_pending:gpu0'],
    [{ eccSbeVolatile: 1000 }, 'ECC_ERROR', 'warning', 'monitor', 'sbe_storm:gpu0'],
    [{ nvlinkReplayErrors: 100 }, 'NVLINK_ERROR', 'warning', 'monitor', 'nvlink:gpu0'],
    [{ temperatureC: 90 }, 'THERMAL_WARNING', 'warning', 'none', 'thermal:gpu0'],
    [{ health: 'fail' as const }, 'GPU_HEALTH_ERROR', 'critical', 'reboot', 'health:gpu0'],
    [{ health: 'warn' as const }, 'GPU_HEALTH_WARNING', 'warning', 'monitor', 'health:gpu0'],
  ])('%o → %s %s %s', (fields, category, severity, action, key) => {
    const v = classifySnapshot(snap([{ index: 0, ...fields }]), ctx);
    expect(v).toMatchObject({ category, severity, action, gpu: 0 });
    expect(v.findings[0]?.key).toBe(key);
  });

  it.each([
    [{ eccDbeVolatile: 0, rowRemapFailure: 0, retiredPagesPending: 0, eccSbeVolatile: 999 }],
    [{ nvlinkCrcFlitErrors: 99, temperatureC: 86, health: 'pass' as const }],
  ])('below thresholds is healthy: %o', (fields) => {
    expect(classifySnapshot(snap([{ index: 0, ...fields }]), ctx).category).toBe('HEALTHY');
  });

  it('thresholds come from the policy', () => {
    expect(
      classifySnapshot(snap([{ index: 0, temperatureC: 70 }]), withPolicy({ thermalWarningC: 70 })).category,
    ).toBe('THERMAL_WARNING');
  });

  it('names DCGM health incidents by their DCGM_FR code; unknown text is ambiguous', () => {
    const v = classifySnapshot(
      snap([
        {
          index: 0,
          health: 'fail',
          healthIncidents: [
            {
              severity: 'fail',
              system: 'Memory',
              message: 'GPU 0 had uncorrectable memory errors and row remapping failed.',
            },
          ],
        },
        {
          index: 1,
          health: 'warn',
          healthIncidents: [{ severity: 'warn', system: 'SM', message: 'the SM feels odd' }],
        },
      ]),
      ctx,
    );
    expect(v).toMatchObject({ category: 'GPU_HEALTH_ERROR', severity: 'critical', action: 'reboot', gpu: 0 });
    expect(v.findings[0]?.evidence[0]).toContain('DCGM_FR_ROW_REMAP_FAILURE');
    expect(v.findings[0]?.ambiguous).toBeUndefined();
    expect(v.findings[1]).toMatchObject({
      category: 'GPU_HEALTH_WARNING',
      ambiguous: true,
      key: 'health:sm:gpu1',
    });
  });
});

describe('DCGM health that restates a counter', () => {
  const dbeHealth = {
    severity: 'fail' as const,
    system: 'MEM',
    code: 'DCGM_FR_VOLATILE_DBE_DETECTED',
    message: 'DCGM_FR_VOLATILE_DBE_DETECTED',
  };

  it('joins the ECC finding as evidence: one DBE read from the counter and DCGM_EXP_GPU_HEALTH_STATUS is one finding', () => {
    const v = classifySnapshot(
      snap([{ index: 5, eccDbeVolatile: 2, health: 'fail', healthIncidents: [dbeHealth] }]),
      ctx,
    );
    expect(v.findings.map((f) => f.key)).toEqual(['ecc_dbe:gpu5']);
    expect(v.findings[0]?.evidence).toEqual([
      'GPU 5: ECC DBE volatile total=2',
      'GPU 5: DCGM health fail MEM: DCGM_FR_VOLATILE_DBE_DETECTED [DCGM_FR_VOLATILE_DBE_DETECTED]',
    ]);
  });

  it('stands alone when the counter was not read (health without ECC counters)', () => {
    const v = classifySnapshot(snap([{ index: 5, health: 'fail', healthIncidents: [dbeHealth] }]), ctx);
    expect(v).toMatchObject({ category: 'GPU_HEALTH_ERROR', severity: 'critical', gpu: 5 });
    expect(v.findings.map((f) => f.key)).toEqual(['health:mem:gpu5']);
  });
});

describe('GPU count, conditions, collection errors, unparsed text', () => {
  const eight = Array.from({ length: 8 }, (_, index) => ({ index }));

  it('fewer GPUs than expected → GPU_MISSING critical reboot', () => {
    const v = classifySnapshot(
      snap(
        eight.filter((g) => g.index !== 3),
        { expectedGpus: 8 },
      ),
      ctx,
    );
    expect(v).toMatchObject({ category: 'GPU_MISSING', severity: 'critical', action: 'reboot' });
    expect(v.findings[0]?.key).toBe('gpu_missing');
    expect(v.findings[0]?.evidence[0]).toContain('missing index 3');
  });

  it('allocatable below capacity → GPU_MISSING', () => {
    expect(classifySnapshot(snap(eight, { expectedGpus: 8, allocatableGpus: 7 }), ctx).category).toBe(
      'GPU_MISSING',
    );
  });

  it('a MIG node: eight physical GPUs with their instances, no allocatable count → healthy', () => {
    const mig = eight.map((g) => ({ ...g, migInstances: ['1:3g.40gb', '2:3g.40gb'] }));
    expect(classifySnapshot(snap(mig, { expectedGpus: 8 }), ctx).category).toBe('HEALTHY');
    expect(classifySnapshot(snap(mig.slice(1), { expectedGpus: 8 }), ctx).category).toBe('GPU_MISSING');
  });

  it('a collection error is COLLECTION_FAILED, not healthy and not a missing GPU', () => {
    const v = classifySnapshot(
      snap([], { expectedGpus: 8, error: { kind: 'timeout', message: 'scrape timed out after 5s' } }),
      ctx,
    );
    expect(v).toMatchObject({ category: 'COLLECTION_FAILED', severity: 'warning', action: 'none' });
    expect(v.findings.map((f) => f.key)).toEqual(['collection']);
  });

  it('a conditions-only snapshot does not count GPUs', () => {
    expect(classifySnapshot(snap([], { source: 'conditions', expectedGpus: 8 }), ctx).category).toBe(
      'HEALTHY',
    );
  });

  it.each([
    ['NvidiaXID79Error', 'XID_CRITICAL_79', 'critical'],
    ['NvidiaXID13Error', 'XID_WARNING_13', 'warning'],
  ])('AcceleratedHardwareReady=False reason %s → %s', (reason, category, severity) => {
    const v = classifySnapshot(
      snap([], {
        source: 'conditions',
        conditions: [{ type: 'AcceleratedHardwareReady', status: 'False', reason }],
      }),
      ctx,
    );
    expect(v).toMatchObject({ category, severity });
    expect(v.findings[0]?.kind).toBe('condition');
  });

  it('a condition for an XID DCGM already shows adds evidence, not a second finding', () => {
    const v = classifySnapshot(
      snap([{ index: 3, xidLast: 79 }], {
        conditions: [{ type: 'AcceleratedHardwareReady', status: 'False', reason: 'NvidiaXID79Error' }],
      }),
      ctx,
    );
    expect(v.findings).toHaveLength(1);
    expect(v.findings[0]?.evidence.some((e) => e.includes('NvidiaXID79Error'))).toBe(true);
  });

  it.each([
    [
      { type: 'AcceleratedHardwareReady', status: 'False' as const, reason: 'NvidiaDeviceCountMismatch' },
      'GPU_HEALTH_ERROR',
      true,
    ],
    [
      { type: 'AcceleratedHardwareReady', status: 'False' as const, reason: 'NvidiaDoubleBitError' },
      'ECC_ERROR',
      undefined,
    ],
    [{ type: 'GpuNvlinkProblem', status: 'True' as const, reason: 'NVLinkDown' }, 'NVLINK_ERROR', undefined],
    [{ type: 'GPUProblem', status: 'True' as const, reason: 'GpuXid48' }, 'XID_CRITICAL_48', undefined],
  ])('condition %o → %s', (condition, category, ambiguous) => {
    const v = classifySnapshot(snap([], { source: 'conditions', conditions: [condition] }), ctx);
    expect(v.category).toBe(category);
    expect(v.findings[0]?.ambiguous).toBe(ambiguous);
  });

  it.each([
    [{ type: 'AcceleratedHardwareReady', status: 'True' as const }],
    [{ type: 'Ready', status: 'False' as const, reason: 'KubeletNotReady' }],
    [{ type: 'GPUProblem', status: 'False' as const, reason: 'NoProblem' }],
  ])('condition %o is not a GPU fault', (condition) => {
    expect(classifySnapshot(snap([], { conditions: [condition] }), ctx).category).toBe('HEALTHY');
  });

  it.each([
    [{ type: 'KernelReady', status: 'False' as const, reason: 'KernelBug', message: 'BUG: soft lockup' }],
    [{ type: 'NetworkingReady', status: 'False' as const, reason: 'InterfaceNotUp' }],
    [{ type: 'StorageReady', status: 'False' as const, reason: 'IODelays' }],
    [{ type: 'ContainerRuntimeReady', status: 'False' as const, reason: 'PodStuckTerminating' }],
    [{ type: 'KernelDeadlock', status: 'True' as const, reason: 'DockerHung' }],
    [{ type: 'ReadonlyFilesystem', status: 'True' as const, reason: 'FilesystemIsReadOnly' }],
  ])('condition %o is a node problem: one NODE_CONDITION warning, alert only, keyed by type', (condition) => {
    const v = classifySnapshot(snap([], { source: 'conditions', conditions: [condition] }), ctx);
    expect(v).toMatchObject({ category: 'NODE_CONDITION', severity: 'warning', action: 'none' });
    expect(v.findings).toHaveLength(1);
    expect(v.findings[0]).toMatchObject({ kind: 'condition', key: `condition:${condition.type}` });
    expect(v.findings[0]?.gpu).toBeUndefined();
    expect(v.findings[0]?.ambiguous).toBeUndefined();
    expect(v.explanation).toContain('not a GPU fault');
  });

  it.each([
    [{ type: 'KernelReady', status: 'True' as const, reason: 'KernelIsReady' }],
    [{ type: 'NetworkingReady', status: 'Unknown' as const }],
    [{ type: 'KernelDeadlock', status: 'False' as const, reason: 'KernelHasNoDeadlock' }],
    [{ type: 'SomeVendorFlag', status: 'True' as const }],
  ])('condition %o is nothing', (condition) => {
    expect(classifySnapshot(snap([], { conditions: [condition] }), ctx).category).toBe('HEALTHY');
  });

  it("gpuSeverity leaves node problems out of a node's GPU health", () => {
    const kernel = { type: 'KernelReady', status: 'False' as const, reason: 'KernelBug' };
    expect(gpuSeverity(classifySnapshot(snap([], { conditions: [kernel] }), ctx).findings)).toBe('healthy');
    const both = classifySnapshot(snap([{ index: 0, xidLast: 13 }], { conditions: [kernel] }), ctx);
    expect(gpuSeverity(both.findings)).toBe('warning');
  });

  it('a node problem beside a GPU fault: the GPU fault leads the verdict, both are findings', () => {
    const v = classifySnapshot(
      snap([{ index: 0, xidLast: 79 }], {
        conditions: [
          { type: 'KernelReady', status: 'False', reason: 'KernelBug' },
          { type: 'AcceleratedHardwareReady', status: 'False', reason: 'NvidiaXID79Error' },
        ],
      }),
      ctx,
    );
    expect(v.category).toBe('XID_CRITICAL_79');
    expect(v.findings.map((f) => f.category).sort()).toEqual(['NODE_CONDITION', 'XID_CRITICAL_79']);
  });

  it('unparsed text is an ambiguous UNKNOWN info finding for the LLM', () => {
    const v = classifySnapshot(snap([{ index: 0 }], { unparsed: ['something strange'] }), ctx);
    expect(v).toMatchObject({ category: 'UNKNOWN', severity: 'info', action: 'none' });
    expect(v.findings[0]).toMatchObject({
      ambiguous: true,
      key: 'unparsed',
      evidence: ['something strange'],
    });
  });
});

describe('verdicts', () => {
  it('the most severe finding wins and all are kept', () => {
    const v = classifySnapshot(
      snap([
        { index: 0, temperatureC: 95 },
        { index: 1, xidLast: 13 },
        { index: 2, eccDbeVolatile: 4 },
      ]),
      ctx,
    );
    expect(v).toMatchObject({ category: 'ECC_ERROR', gpu: 2 });
    expect(v.findings.map((f) => f.category)).toEqual(['ECC_ERROR', 'XID_WARNING_13', 'THERMAL_WARNING']);
  });

  it('one XID seen by several sources is one finding with all the evidence', () => {
    const v = classifySnapshot(
      snap([{ index: 3, pciBusId: '00000000:65:00.0', xidLast: 79, xids: [{ xid: 79, count: 1 }] }], {
        logLines: [
          "NVRM: Xid (PCI:0000:65:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.",
        ],
      }),
      ctx,
    );
    expect(v.findings).toHaveLength(1);
    expect(v.findings[0]?.evidence).toHaveLength(3);
  });

  it.each([
    ['dcgm-sample-eks-h100-8gpu.prom', 'HEALTHY'],
    ['dcgm-sample-a800-8gpu-mig.prom', 'HEALTHY'],
    ['dcgm-sample-xid-errcode-labels.prom', 'HEALTHY'],
    ['kernel-xid-lines.txt', 'XID_CRITICAL_48'],
    ['aws-sample-bundle.txt', 'XID_CRITICAL_79'],
    ['dcgmi-health-table.txt', 'GPU_HEALTH_ERROR'],
    ['dcgmi-dmon-230-319.txt', 'XID_CRITICAL_79'],
  ])('classifies the fixture %s as %s', (file, category) => {
    expect(classifySnapshot(snapshotFromDump(fixture(file)), ctx).category).toBe(category);
  });
});

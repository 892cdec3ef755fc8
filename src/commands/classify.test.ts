import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from './classify.js';

const corpus = (name: string) => fileURLToPath(new URL(`../../eval/corpus/${name}`, import.meta.url));

function captureStdout() {
  const out: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    out.push(args.map(String).join(' '));
  });
  return () => out.join('\n');
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('gpu-medic classify on real dump formats', () => {
  it.each([
    ['bundle-aws-sections-xid79.txt', 'XID_CRITICAL_79', 3],
    ['bundle-aws-sections-healthy.txt', 'HEALTHY', null],
    ['kernel-mig-xid79.log', 'XID_CRITICAL_79', null],
    ['dmesg-boot-healthy.log', 'HEALTHY', null],
    ['journal-k-healthy.log', 'HEALTHY', null],
    ['exporter-xid154-only.prom', 'XID_CRITICAL_154', 5],
  ])('--json %s → %s', async (file, category, gpu) => {
    const text = captureStdout();
    await expect(main(['--json', corpus(file)])).resolves.toBe(0);
    expect(JSON.parse(text())).toMatchObject({ category, gpu, missing: [] });
  });

  it('says which sections of an AWS sample bundle are missing, and classifies the rest', async () => {
    const text = captureStdout();
    await expect(main([corpus('bundle-aws-sections-partial-xid48.txt')])).resolves.toBe(0);
    expect(text()).toMatch(/XID_CRITICAL_48 critical/);
    expect(text()).toMatch(/missing dcgmi_health: the HEALTH_DATA section is empty/);
    expect(text()).toMatch(/missing dcgmi_discovery: the bundle has no GPU_INFO section/);
  });

  it('gives one verdict per node of an AWS sample run log', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpu-medic-classify-'));
    try {
      const file = join(dir, 'run.log');
      writeFileSync(
        file,
        [
          'bundle-aws-sections-healthy.txt',
          'bundle-aws-sections-ecc-dbe.txt',
          'bundle-aws-sections-xid79.txt',
        ]
          .map((f) => readFileSync(corpus(f), 'utf8'))
          .join(''),
      );
      const text = captureStdout();
      await expect(main(['--json', file])).resolves.toBe(0);
      const lines = text()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines.map((l) => [l.input, l.node, l.category, l.gpu])).toEqual([
        [`${file}#1`, 'ip-10-0-7-41.us-west-2.compute.internal', 'HEALTHY', null],
        [`${file}#2`, 'ip-10-0-12-35.ec2.internal', 'ECC_ERROR', 2],
        [`${file}#3`, 'ip-10-0-12-34.ec2.internal', 'XID_CRITICAL_79', 3],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

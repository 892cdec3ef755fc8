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
});

/**
 * The shipped alert rules, checked by Prometheus's own `promtool check rules` (issue 15). Part of
 * `npm run test:interop`, which needs the real Prometheus tools: without `promtool` this fails and says how
 * to install it (Debian: `apt-get install prometheus`), it never passes silently.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';

const promDir = join(import.meta.dirname, '../../manifests/prometheus');
const dir = mkdtempSync(join(tmpdir(), 'gpu-medic-rules-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function promtool(args: string[]): { status: number; out: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8' });
  if (r.error) {
    throw new Error(
      `promtool is not available (${r.error.message}): the interop suite needs Prometheus's tools — install them (Debian: apt-get install -y prometheus)`,
    );
  }
  return { status: r.status ?? 1, out: `${r.stdout}${r.stderr}` };
}

describe('manifests/prometheus against promtool', () => {
  it('accepts the plain rules file', () => {
    const r = promtool(['check', 'rules', join(promDir, 'rules.yml')]);
    expect(r.out).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.status, r.out).toBe(0);
  });

  it("accepts the PrometheusRule's spec as a rules file", () => {
    const pr = parseYaml(readFileSync(join(promDir, 'prometheus-rule.yaml'), 'utf8')) as { spec: unknown };
    const file = join(dir, 'prometheus-rule-spec.yml');
    writeFileSync(file, stringify(pr.spec));
    const r = promtool(['check', 'rules', file]);
    expect(r.status, r.out).toBe(0);
  });

  it('rejects a broken rule (the check can fail)', () => {
    const file = join(dir, 'broken.yml');
    writeFileSync(
      file,
      stringify({ groups: [{ name: 'x', rules: [{ alert: 'Broken', expr: 'DCGM_FI_DEV_XID_ERRORS !=' }] }] }),
    );
    expect(promtool(['check', 'rules', file]).status).not.toBe(0);
  });
});

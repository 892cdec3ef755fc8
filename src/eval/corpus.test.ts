import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CorpusError, loadCorpus } from './corpus.js';
import { runEval } from './run.js';
import { hasAwsCredentials, NoCredentialsError, runEvalSuite } from './suite.js';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function corpus(files: Record<string, string>): string {
  dir = mkdtempSync(join(tmpdir(), 'gpu-medic-eval-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

const xid79 =
  "[1.0] NVRM: Xid (PCI:0000:91:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.\n";

describe('loadCorpus', () => {
  it('reads labels and dumps', () => {
    const d = corpus({
      'labels.yaml':
        'items:\n  - { file: a.log, source: kernel, expect: { category: XID_CRITICAL_79, xid: 79 } }\n',
      'a.log': xid79,
    });
    const [item] = loadCorpus(d);
    expect(item).toMatchObject({ id: 'a.log', needsLlm: false, note: '', text: xid79 });
  });

  it.each([
    ['a missing labels file', {}, /labels.yaml cannot be read \(ENOENT\)/],
    ['broken YAML', { 'labels.yaml': 'items: [\n' }, /labels.yaml: /],
    [
      'an unknown source and a missing category',
      { 'labels.yaml': 'items:\n  - { file: a.log, source: syslog, expect: {} }\n' },
      /items\.0\.(source|expect\.category): .*items\.0\.(source|expect\.category): /,
    ],
    [
      'a file outside the folder',
      { 'labels.yaml': 'items:\n  - { file: ../x.log, source: kernel, expect: { category: HEALTHY } }\n' },
      /inside the corpus folder/,
    ],
    [
      'a labelled file that does not exist, and a duplicate',
      {
        'labels.yaml':
          'items:\n  - { file: gone.log, source: kernel, expect: { category: HEALTHY } }\n  - { file: gone.log, source: kernel, expect: { category: HEALTHY } }\n',
      },
      /gone.log cannot be read \(ENOENT\); gone.log is labelled more than once/,
    ],
  ])('rejects %s with a clear error', (_name, files, message) => {
    const d = corpus(files as Record<string, string>);
    expect(() => loadCorpus(d)).toThrow(CorpusError);
    expect(() => loadCorpus(d)).toThrow(message);
  });
});

describe('runEval on bad dumps', () => {
  it('scores an unreadable dump as wrong, with its error, and goes on', async () => {
    const d = corpus({
      'labels.yaml':
        'items:\n  - { file: empty.log, source: kernel, expect: { category: HEALTHY } }\n  - { file: a.log, source: kernel, expect: { category: XID_CRITICAL_79 } }\n',
      'empty.log': '',
      'a.log': xid79,
    });
    const report = await runEval({ corpusDir: d, mode: 'rules' });
    expect(report.items[0]).toMatchObject({ id: 'empty.log', correct: false });
    expect(report.items[0]?.error).toBeTruthy();
    expect(report.items[1]).toMatchObject({ id: 'a.log', correct: true });
    expect(report.overall).toEqual({ total: 2, correct: 1, accuracy: 0.5 });
  });
});

describe('runEvalSuite', () => {
  it('refuses --real without credentials, before any model call', async () => {
    const d = corpus({
      'labels.yaml': 'items:\n  - { file: a.log, source: kernel, expect: { category: XID_CRITICAL_79 } }\n',
      'a.log': xid79,
    });
    const home = mkdtempSync(join(tmpdir(), 'gpu-medic-home-'));
    try {
      expect(hasAwsCredentials({}, home)).toBe(false);
      expect(hasAwsCredentials({ AWS_PROFILE: 'prod' }, home)).toBe(true);
      await expect(
        runEvalSuite({ corpusDir: d, mode: 'hybrid', real: true, env: {}, homeDir: home }),
      ).rejects.toThrow(NoCredentialsError);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});

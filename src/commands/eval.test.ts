import { afterEach, describe, expect, it, vi } from 'vitest';
import { oracleBackendNote } from '../eval/oracle.js';
import type { EvalSuiteResult } from '../eval/suite.js';
import { CliError } from './cli-error.js';
import { main } from './eval.js';

function captureStdout() {
  const out: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    out.push(args.map(String).join(' '));
  });
  return { text: () => out.join('\n'), spy };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('gpu-medic eval', () => {
  it('--json: the rules baseline and the hybrid run against the labelled Bedrock fake', async () => {
    const { text } = captureStdout();
    await expect(main(['--json'])).resolves.toBe(0);
    const result = JSON.parse(text()) as EvalSuiteResult;
    expect(result.runs.map((r) => [r.mode, r.backend])).toEqual([
      ['rules', 'none (rules only)'],
      ['hybrid', oracleBackendNote],
    ]);
    const hybrid = result.runs[1];
    expect(hybrid?.overall.accuracy).toBe(1);
    expect(result.fakeRequests).toBe(hybrid?.distinctSignatures);
    expect(result.runs[0]?.settled.accuracy).toBe(1);
  });

  it('prints a table per run, with the fake clearly named', async () => {
    const { text } = captureStdout();
    await expect(main(['--mode', 'rules'])).resolves.toBe(0);
    expect(text()).toContain('== classifier evaluation: mode rules ==');
    expect(text()).toMatch(/accuracy: \d+\/\d+/);
    expect(text()).not.toContain('mode hybrid');
  });

  it.each([
    [['--mode', 'gpt'], /--mode must be one of rules, hybrid, llm/, 2],
    [['--frobnicate'], /Unknown option '--frobnicate'/, 2],
    [['--corpus', '/nonexistent/corpus'], /labels.yaml cannot be read/, 1],
  ])('%j fails with a clear error', async (argv, message, exitCode) => {
    const err = await main(argv).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).message).toMatch(message);
    expect((err as CliError).exitCode).toBe(exitCode);
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createDcgmDiagRunner, diagCommand } from './dcgm-diag.js';
import type { ExecPort, ExecRequest, ExecResult } from './dcgm-server.js';

const fixture = readFileSync(new URL('../../test/fixtures/dcgmi-diag-r2-fail.json', import.meta.url), 'utf8');
const pod = { namespace: 'kube-system', name: 'dcgm-server-abcde' };

/** An exec port that answers each call with the next scripted answer (a result or an error to throw). */
function execOf(...answers: (ExecResult | Error)[]): ExecPort & { calls: ExecRequest[] } {
  const calls: ExecRequest[] = [];
  return {
    calls,
    async exec(req) {
      calls.push(req);
      const a = answers.shift();
      if (!a) throw new Error('unexpected exec');
      if (a instanceof Error) throw a;
      return a;
    },
  };
}

const coded = (message: string, code: string) => Object.assign(new Error(message), { code });

describe('createDcgmDiagRunner', () => {
  it('runs `dcgmi diag -r <level> -j` by argv in the node’s DCGM pod and reads the JSON despite exit 205', async () => {
    const exec = execOf({ stdout: fixture, stderr: '', exitCode: 205 });
    const runner = createDcgmDiagRunner({ exec, findPod: async () => pod });
    const run = await runner.run('gpu-0', 2);
    expect(exec.calls).toMatchObject([{ namespace: 'kube-system', pod: pod.name, command: diagCommand(2) }]);
    expect(diagCommand(2)).toEqual(['dcgmi', 'diag', '-r', '2', '-j']);
    expect(run).toMatchObject({ kind: 'report', pod: 'kube-system/dcgm-server-abcde', report: { level: 2 } });
    expect(exec.calls[0]?.timeoutMs).toBeGreaterThanOrEqual(30 * 60_000);
  });

  it('no DCGM pod on the node: unavailable, nothing run', async () => {
    const exec = execOf();
    const run = await createDcgmDiagRunner({ exec, findPod: async () => undefined }).run('gpu-0', 1);
    expect(run).toEqual({ kind: 'unavailable', reason: 'no DCGM host-engine pod is running on gpu-0' });
  });

  it('DCGM’s runtime_error, unreadable output, a missing binary, a timeout: no verdict, with the reason', async () => {
    const exec = execOf(
      {
        stdout: '{"DCGM Diagnostic": {"runtime_error": "host engine not running"}}',
        stderr: '',
        exitCode: 255,
      },
      { stdout: '', stderr: 'Error: unable to connect', exitCode: 255 },
      coded('exec: "dcgmi": executable file not found in $PATH', 'missing-command'),
      coded('timed out', 'timeout'),
    );
    const runner = createDcgmDiagRunner({ exec, findPod: async () => pod });
    expect(await runner.run('gpu-0', 1)).toMatchObject({
      kind: 'error',
      reason: 'DCGM: host engine not running',
    });
    expect(await runner.run('gpu-0', 1)).toMatchObject({
      kind: 'error',
      reason: expect.stringMatching(/not JSON.*exit code 255, stderr: Error: unable to connect/),
    });
    expect(await runner.run('gpu-0', 1)).toMatchObject({
      kind: 'error',
      reason: expect.stringContaining('not in'),
    });
    expect(await runner.run('gpu-0', 3)).toMatchObject({
      kind: 'error',
      reason: expect.stringContaining('did not finish within 120 min'),
    });
  });

  it('an API failure is thrown (the step retries it); an aborted run rethrows', async () => {
    const runner = createDcgmDiagRunner({
      exec: execOf(coded('pod not found', 'not-found')),
      findPod: async () => pod,
    });
    await expect(runner.run('gpu-0', 1)).rejects.toThrow('pod not found');
    const controller = new AbortController();
    controller.abort();
    const aborted = createDcgmDiagRunner({
      exec: execOf(coded('timed out', 'timeout')),
      findPod: async () => pod,
    });
    await expect(aborted.run('gpu-0', 1, controller.signal)).rejects.toThrow('timed out');
  });
});

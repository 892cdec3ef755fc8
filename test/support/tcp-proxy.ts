/**
 * A TCP proxy a test can cut and restore: the database "goes away" for the connections through it (every
 * open socket is destroyed and new ones are refused) while the real server keeps running for other tests.
 * The proxy is a child process (tcp-proxy-child.ts), so it keeps relaying while a synchronous store call
 * blocks the test's thread.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface TcpProxy {
  readonly port: number;
  /** Destroys every proxied connection and stops listening. */
  cut(): Promise<void>;
  /** Listens again on the same port. */
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'tcp-proxy-child.ts');
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', script, targetHost, String(targetPort)],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const r = await lines.next();
    if (r.done) throw new Error('the TCP proxy exited');
    return r.value;
  };
  const first = await next();
  const port = Number(/^port (\d+)$/.exec(first)?.[1]);
  if (!port) throw new Error(`the TCP proxy said ${first}`);
  const command = async (c: string) => {
    child.stdin?.write(`${c}\n`);
    const answer = await next();
    if (answer !== 'ok') throw new Error(`the TCP proxy answered ${answer} to ${c}`);
  };
  return {
    port,
    cut: () => command('cut'),
    restore: () => command('restore'),
    close: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin?.end();
      await exited;
    },
  };
}

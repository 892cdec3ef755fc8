/**
 * Running a command in a pod through the API server's `exec` subresource, with client-node's `Exec`
 * (WebSocket, channel protocol). The only module that uses `Exec`.
 *
 * Two things client-node 1.4 leaves to its caller, handled here:
 *   - it has no timeout or size limit: we close the socket on either;
 *   - its message handler throws on a frame for an unknown channel or an unreadable status, inside the
 *     socket's event emitter, which would crash the process: the socket's `emit` is guarded so such a frame
 *     ends this exec with an ExecError instead.
 * The socket comes from `WebSocketHandler`'s factory parameter, so a hung handshake can be aborted too.
 */
import { Readable, Writable } from 'node:stream';
import { Exec, type KubeConfig, type V1Status } from '@kubernetes/client-node';
// Not re-exported by the package index; the package has no `exports` map, so the module path is public.
import { WebSocketHandler } from '@kubernetes/client-node/dist/web-socket-handler.js';
import WebSocket from 'ws';

export const ExecErrorCodes = [
  'not-found',
  'forbidden',
  'rejected',
  'connect',
  'timeout',
  'aborted',
  'too-large',
  'protocol',
  'closed',
  'missing-command',
  'failed',
] as const;
export type ExecErrorCode = (typeof ExecErrorCodes)[number];

/** An exec that did not produce an exit code. A command that ran and exited non-zero is NOT an error. */
export class ExecError extends Error {
  constructor(
    readonly code: ExecErrorCode,
    message: string,
    /** HTTP status of a refused upgrade, when there was one. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ExecError';
  }
}

export interface ExecInPodOptions {
  namespace: string;
  pod: string;
  /** Defaults to the pod's only container (the API server picks it). */
  container?: string;
  command: string[];
  timeoutMs: number;
  /** Limit on stdout + stderr together. Default 4 MiB. */
  maxBytes?: number;
  signal?: AbortSignal;
}

export interface ExecOutput {
  stdout: string;
  stderr: string;
  exitCode: number;
}

const DEFAULT_MAX_BYTES = 4 * 1024 * 1024;

/**
 * The runtime could not start argv[0] because the image does not have it. containerd (through the kubelet's
 * InternalError) says `exec: "sh": executable file not found in $PATH`; older runtimes
 * `stat /bin/sh: no such file or directory`.
 */
const MISSING_COMMAND_RE =
  /executable file not found in \$PATH|exec: \\?"[^"\\]*\\?": stat [^:]+: no such file or directory/;

export function isMissingCommandMessage(message: string): boolean {
  return MISSING_COMMAND_RE.test(message);
}

/** The exit code a v4/v5 Status carries: 0 for Success, the ExitCode cause for NonZeroExitCode. */
export function exitCodeOf(status: V1Status): number | undefined {
  if (status.status === 'Success') return 0;
  if (status.reason !== 'NonZeroExitCode') return undefined;
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
  const n = Number(cause?.message);
  return Number.isInteger(n) ? n : undefined;
}

function errorFromHandshake(err: unknown, target: string): ExecError {
  const message =
    err instanceof Error
      ? err.message
      : typeof err === 'object' && err !== null && 'message' in err
        ? String((err as { message: unknown }).message)
        : String(err);
  const status = Number(/Unexpected server response: (\d{3})/.exec(message)?.[1]);
  if (status === 404) return new ExecError('not-found', `${target}: pod not found (HTTP 404)`, 404);
  if (status === 401 || status === 403)
    return new ExecError('forbidden', `${target}: exec not allowed (HTTP ${status})`, status);
  if (Number.isInteger(status))
    return new ExecError('rejected', `${target}: the API server refused the exec (HTTP ${status})`, status);
  return new ExecError('connect', `${target}: cannot open the exec stream: ${message}`);
}

/** Runs `command` in a pod and resolves with its output and exit code; rejects with ExecError otherwise. */
export function execInPod(kc: KubeConfig, opts: ExecInPodOptions): Promise<ExecOutput> {
  const target = `${opts.namespace}/${opts.pod}`;
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  if (opts.command.length === 0) return Promise.reject(new ExecError('failed', `${target}: empty command`));
  if (opts.signal?.aborted) return Promise.reject(new ExecError('aborted', `${target}: exec aborted`));

  return new Promise<ExecOutput>((resolve, reject) => {
    let socket: WebSocket | undefined;
    let settled = false;
    let bytes = 0;
    let status: V1Status | undefined;
    const chunks = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
    const ended = { stdout: false, stderr: false };

    const finish = (error: ExecError | undefined, output?: ExecOutput) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (error) {
        socket?.terminate();
        reject(error);
      } else if (output) resolve(output);
    };
    const tryResolve = () => {
      if (!status || !ended.stdout || !ended.stderr) return;
      const exitCode = exitCodeOf(status);
      if (exitCode === undefined) {
        const said = status.message ?? status.reason ?? 'exec failed';
        finish(
          new ExecError(
            isMissingCommandMessage(said) ? 'missing-command' : 'failed',
            `${target}: ${said} (${status.status ?? 'no status'})`,
          ),
        );
        return;
      }
      finish(undefined, {
        stdout: Buffer.concat(chunks.stdout).toString('utf8'),
        stderr: Buffer.concat(chunks.stderr).toString('utf8'),
        exitCode,
      });
    };
    const collector = (name: 'stdout' | 'stderr') => {
      const w = new Writable({
        write(chunk: Buffer, _enc, cb) {
          bytes += chunk.length;
          if (bytes > maxBytes) {
            finish(new ExecError('too-large', `${target}: output larger than ${maxBytes} bytes`));
          } else chunks[name].push(chunk);
          cb();
        },
      });
      w.on('finish', () => {
        ended[name] = true;
        tryResolve();
      });
      return w;
    };
    const stdout = collector('stdout');
    const stderr = collector('stderr');

    const timer = setTimeout(
      () => finish(new ExecError('timeout', `${target}: exec timed out after ${opts.timeoutMs} ms`)),
      opts.timeoutMs,
    );
    const onAbort = () => finish(new ExecError('aborted', `${target}: exec aborted`));
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    const factory = (uri: string, protocols: string[], wsOpts: WebSocket.ClientOptions) => {
      const ws = new WebSocket(uri, protocols, { ...wsOpts, maxPayload: maxBytes + 1024 });
      socket = ws;
      const emit = ws.emit.bind(ws) as (event: string | symbol, ...args: unknown[]) => boolean;
      ws.emit = ((event: string | symbol, ...args: unknown[]) => {
        if (event !== 'message') return emit(event, ...args);
        try {
          return emit(event, ...args);
        } catch (e) {
          finish(new ExecError('protocol', `${target}: unreadable exec frame: ${(e as Error).message}`));
          return true;
        }
      }) as typeof ws.emit;
      ws.on('close', (code, reason) => {
        if (settled) return;
        // A status frame ends the streams just before the close; give their 'finish' events a turn.
        setImmediate(() => {
          if (status) return tryResolve();
          finish(
            new ExecError(
              'closed',
              `${target}: the exec stream closed without an exit status (code ${code}${reason.length > 0 ? `, ${reason.toString()}` : ''})`,
            ),
          );
        });
      });
      if (settled) ws.terminate();
      return ws;
    };
    // A v5 close frame from the server ends these streams, not process.stdout (client-node's default).
    const stdin = new Readable({ read() {} });
    const handler = new WebSocketHandler(kc, factory, { stdin, stdout, stderr });
    const exec = new Exec(kc, handler);
    exec
      .exec(
        opts.namespace,
        opts.pod,
        opts.container ?? '',
        opts.command,
        stdout,
        stderr,
        null,
        false,
        (s) => {
          status = s;
          tryResolve();
        },
      )
      .then(
        (ws) => {
          if (settled) ws.terminate();
        },
        (err: unknown) => finish(errorFromHandshake(err, target)),
      );
  });
}

/** A pod executor with the kubeconfig bound: structurally the collectors' ExecPort. */
export function podExecutor(kc: KubeConfig, defaults: { maxBytes?: number } = {}) {
  return {
    exec(req: ExecInPodOptions): Promise<ExecOutput> {
      const maxBytes = req.maxBytes ?? defaults.maxBytes;
      return execInPod(kc, maxBytes !== undefined ? { ...req, maxBytes } : req);
    },
  };
}

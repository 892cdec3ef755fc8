/**
 * Child process of tcp-proxy.ts: the proxy itself. It runs in its own process because a store over
 * PostgreSQL blocks the test's thread while it waits for an answer, and the proxy must keep relaying then.
 * stdin lines `cut` / `restore`; stdout lines `port N` once listening, then `ok` after each command.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';

async function startProxy(targetHost: string, targetPort: number) {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((client) => {
        const upstream = connect(targetPort, targetHost);
        for (const sock of [client, upstream]) {
          sockets.add(sock);
          sock.on('close', () => sockets.delete(sock));
          sock.on('error', () => {
            client.destroy();
            upstream.destroy();
          });
        }
        client.pipe(upstream).pipe(client);
      });
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        const a = s.address();
        port = typeof a === 'object' && a ? a.port : port;
        server = s;
        resolve();
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      for (const sock of sockets) sock.destroy();
      sockets.clear();
      if (!server) return resolve();
      const s = server;
      server = undefined;
      s.close(() => resolve());
    });
  await listen();
  return { port: () => port, cut: stop, restore: listen };
}

const [host, target] = process.argv.slice(2);
const proxy = await startProxy(host ?? '127.0.0.1', Number(target));
process.stdout.write(`port ${proxy.port()}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'cut') await proxy.cut();
  else if (line === 'restore') await proxy.restore();
  process.stdout.write('ok\n');
}
await proxy.cut();

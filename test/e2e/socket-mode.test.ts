/**
 * `gpu-medic run` in Socket Mode (SLACK_APP_TOKEN set) with Slack unreachable: the ops server is the one
 * server on PORT (Bolt opens none of its own, so no EADDRINUSE), the monitor runs while Slack is down,
 * and SIGTERM still ends the process with 0 although the Socket Mode client never connected.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import { waitFor } from '../support/wait.js';
import { type ChildGpuMedic, freePort, metricValue, spawnGpuMedic } from './helpers.js';

let sim: Simulator;
let dir: string;
let bot: ChildGpuMedic | undefined;

beforeAll(async () => {
  sim = await startSimulator({ nodes: 2, slack: false });
  dir = mkdtempSync(join(tmpdir(), 'gpu-medic-e2e-socket-'));
});

afterAll(async () => {
  await bot?.stop();
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('gpu-medic run in Socket Mode, Slack unreachable', () => {
  it('serves the ops routes on PORT, keeps scanning, and exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const child = spawnGpuMedic(['run'], {
      ...process.env,
      ...sim.env,
      SLACK_BOT_TOKEN: 'xoxb-0000000000-unreachable',
      SLACK_APP_TOKEN: 'xapp-1-A0000000000-0000000000-unreachable',
      // Port 9 (discard): nothing answers, as when the cluster has no route to Slack.
      SLACK_API_URL: 'http://127.0.0.1:9/api/',
      SLACK_CHANNEL: '#gpu-alerts',
      DB_PATH: join(dir, 'gpu-medic.db'),
      PORT: String(port),
      MONITOR_INTERVAL: '1',
      CLASSIFIER: 'rules',
      LOG_LEVEL: 'info',
      POD_NAMESPACE: 'gpu-medic',
      LEASE_NAME: `gpu-medic-e2e-socket-${process.pid}`,
      CLOUDWATCH_ENABLED: 'false',
    });
    bot = child;
    const base = `http://127.0.0.1:${port}`;
    await waitFor(
      '/readyz',
      async () => {
        if (child.child.exitCode !== null) throw new Error(`gpu-medic exited early\n${child.tail()}`);
        return (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200;
      },
      { context: () => child.tail(), timeoutMs: 30_000 },
    );
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    await waitFor(
      'two scans with Slack down',
      async () => (await metricValue(base, 'gpu_medic_scans_total')) >= 2,
      { context: () => child.tail(), timeoutMs: 30_000 },
    );
    expect(child.output()).not.toContain('EADDRINUSE');

    expect(await child.stop(), child.tail()).toBe(0);
  }, 60_000);
});

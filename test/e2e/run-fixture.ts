/**
 * The shared set-up of the `gpu-medic run` end-to-end files: the simulator in the test process, one
 * `gpu-medic run` child per file in Slack HTTP mode, its database opened read-only, and the lookups the
 * tests assert with. Call `setupRunFixture()` at the top of a test file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { afterAll, beforeAll, expect } from 'vitest';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import type { RecordedRequest } from '../../src/sim/recorder.js';
import type { SlackMessage } from '../../src/sim/slack-server.js';
import { waitFor } from '../support/wait.js';
import {
  alertChannel,
  type ChildGpuMedic,
  gpuNodeNames,
  openDbReadOnly,
  startRun,
  waitForScans,
} from './helpers.js';

export interface IncidentRow {
  id: string;
  node: string;
  state: string;
  instance_id: string | null;
  severity: string;
  mode: string;
  planned_action: string;
}

interface OutboxRow {
  id: number;
  payload: string;
  status: string;
}

export const terminal = new Set(['resolved', 'escalated', 'failed', 'cancelled', 'dismissed']);

export let sim: Simulator;
let dir: string;
export let bot: ChildGpuMedic & { base: string };
export let db: Database.Database;
export let nodes: string[];
export let channelId: string;

export const diag = () => `--- gpu-medic output (tail) ---\n${bot?.tail(80) ?? ''}`;

export function setupRunFixture(): void {
  beforeAll(async () => {
    sim = await startSimulator({
      nodes: 6,
      rebootDelayMs: 1500,
      replaceDelayMs: 2000,
      devicePluginDelayMs: 600,
      exporterReadyDelayMs: 400,
    });
    dir = mkdtempSync(join(tmpdir(), 'gpu-medic-e2e-run-'));
    const dbPath = join(dir, 'gpu-medic.db');
    // Several nodes are worked on within the breaker's window in one file: the breaker is not under test.
    bot = await startRun(sim, dbPath, { MAX_UNHEALTHY_PERCENT: '80' });
    db = openDbReadOnly(dbPath);
    nodes = gpuNodeNames(sim);
    channelId = sim.slack?.channelId(alertChannel) ?? '';
    // A fault present at the first scan is "preexisting" (needs a human); the tests inject theirs later.
    await waitForScans(bot.base, 1, diag);
  }, 60_000);

  afterAll(async () => {
    try {
      db?.close();
      if (bot) {
        const code = await bot.stop();
        expect(code, `gpu-medic run exit code\n${diag()}`).toBe(0);
      }
      sim?.assertNoUnexpected();
    } finally {
      await sim?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
}

export function slack() {
  const s = sim.slack;
  if (!s) throw new Error('the simulator runs without its Slack fake');
  return s;
}

export function incidentsOf(node: string): IncidentRow[] {
  return db
    .prepare('SELECT * FROM incidents WHERE node = ? ORDER BY first_seen, id')
    .all(node) as IncidentRow[];
}

export function slackOutbox(incidentId: string): OutboxRow[] {
  return db
    .prepare("SELECT id, payload, status FROM outbox WHERE sink = 'slack' AND ordering_key = ? ORDER BY id")
    .all(`incident:${incidentId}`) as OutboxRow[];
}

/** Alerts (thread roots) in the channel about `node`. */
export function alertsFor(node: string): SlackMessage[] {
  return slack()
    .messages.channel(alertChannel)
    .filter((m) => m.text?.includes(node));
}

/** The blocks the alert was first posted with (later chat.update calls may have replaced the buttons). */
export function postedAlertBlocks(node: string): unknown[] {
  const call = slack().calls.find(
    (c) =>
      c.method === 'chat.postMessage' &&
      c.args.thread_ts === undefined &&
      typeof c.args.text === 'string' &&
      c.args.text.includes(node),
  );
  return Array.isArray(call?.args.blocks) ? call.args.blocks : [];
}

export interface ButtonBlock {
  action_id: string;
  value: string;
}

export function alertButtons(blocks: unknown[]): { blockId: string; buttons: ButtonBlock[] } | undefined {
  for (const b of blocks as Array<{ type?: string; block_id?: string; elements?: ButtonBlock[] }>) {
    if (b.type === 'actions') return { blockId: b.block_id ?? '', buttons: b.elements ?? [] };
  }
  return undefined;
}

/** Waits until the incident is closed and every Slack message of it has left the outbox. */
export async function waitSettled(node: string, timeoutMs = 60_000): Promise<IncidentRow> {
  return waitFor(
    `incident on ${node} closed and its Slack messages delivered`,
    () => {
      const inc = incidentsOf(node).at(-1);
      if (!inc || !terminal.has(inc.state)) return undefined;
      const rows = slackOutbox(inc.id);
      return rows.length > 0 && rows.every((r) => r.status === 'delivered') ? inc : undefined;
    },
    {
      timeoutMs,
      context: () =>
        `incidents: ${JSON.stringify(incidentsOf(node))}\noutbox: ${JSON.stringify(
          incidentsOf(node).flatMap((i) => slackOutbox(i.id)),
        )}\n${diag()}`,
    },
  );
}

/** The replies the bot wrote to its outbox for an incident, in order. */
export function outboxReplies(incidentId: string): string[] {
  return slackOutbox(incidentId)
    .map((r) => JSON.parse(r.payload) as { kind: string; text: string })
    .filter((p) => p.kind === 'reply')
    .map((p) => p.text);
}

export function threadTexts(root: SlackMessage): string[] {
  return slack()
    .messages.thread(alertChannel, root.ts)
    .map((m) => m.text ?? '');
}

/** Asserts that `patterns` match lines of `lines` in this order (other lines may come between). */
export function expectInOrder(lines: string[], patterns: RegExp[]): void {
  let from = 0;
  for (const p of patterns) {
    const at = lines.findIndex((l, i) => i >= from && p.test(l));
    expect(at, `${p} after line ${from} in:\n${lines.join('\n')}`).toBeGreaterThanOrEqual(0);
    from = at + 1;
  }
}

export function names(r: RecordedRequest, node: string, instanceId: string | null): boolean {
  const text = `${r.path} ${r.body}`;
  return text.includes(node) || (instanceId !== null && text.includes(instanceId));
}

export function ephemeralsTo(user: string) {
  return slack().messages.ephemeral.filter((e) => e.user === user);
}

export const replaceStory = [
  /Cordoned/,
  /Drained/,
  /Replacement requested/,
  /Replacement node .*Ready/,
  /Resolved: .* was replaced/,
];

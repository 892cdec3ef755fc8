/**
 * Processes racing on one PostgreSQL cluster schema (replicas of one cluster): the database, not the
 * caller, keeps one open incident per fault, one winner per claim and one journal sequence per incident.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { beforeAll, expect, it } from 'vitest';
import { freshDatabase, POSTGRES_HOOK_TIMEOUT, type TestDatabase } from '../../../test/support/postgres.js';
import { openPostgresStore } from './open-pg.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase('race');
}, POSTGRES_HOOK_TIMEOUT);

function racer(count: number) {
  const script = join(dirname(fileURLToPath(import.meta.url)), '../../../test/support/pg-racer.ts');
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', script, db.url, 'race', String(count)],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  const next = async () => {
    const r = await lines.next();
    if (r.done) throw new Error(`racer ${child.pid} exited early`);
    return r.value;
  };
  return { child, next };
}

it('three processes: one incident per fault, one claim winner each, distinct journal rows', async () => {
  const faults = 40;
  const racers = [racer(faults), racer(faults), racer(faults)];
  expect(await Promise.all(racers.map((r) => r.next()))).toEqual(['ready', 'ready', 'ready']);
  for (const r of racers) r.child.stdin?.write('go\n');
  const results = (await Promise.all(racers.map((r) => r.next()))).map(
    (l) => JSON.parse(l) as { wins: number },
  );
  expect(results.reduce((n, r) => n + r.wins, 0)).toBe(faults);
  const s = openPostgresStore(db.url, 'race');
  try {
    const incidents = s.incidents.list();
    expect(incidents).toHaveLength(faults);
    for (const i of incidents) {
      expect(i.count).toBe(3);
      expect(i.state).toBe('cordoned');
      expect(s.steps.list(i.id).map((r) => r.seq)).toEqual([1, 2, 3]);
    }
  } finally {
    s.close();
  }
}, 60_000);

/**
 * Issue 13's end to end with a real PostgreSQL: two simulated clusters, two `gpu-medic run` processes per
 * cluster, one Slack fake, one database (the scenarios are in fleet-scenarios.ts).
 */
import { beforeAll } from 'vitest';
import { freshDatabase, POSTGRES_HOOK_TIMEOUT, type TestDatabase } from '../support/postgres.js';
import { fleetEndToEnd } from './fleet-scenarios.js';

let db: TestDatabase | undefined;

beforeAll(async () => {
  db = await freshDatabase('fleet');
}, POSTGRES_HOOK_TIMEOUT);

fleetEndToEnd(() => {
  if (!db) throw new Error('the test database was not created');
  return db.url;
});

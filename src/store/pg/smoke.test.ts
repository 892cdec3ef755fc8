import { afterAll, beforeAll, expect, it } from 'vitest';
import { freshDatabase, POSTGRES_HOOK_TIMEOUT } from '../../../test/support/postgres.js';
import type { Store } from '../store.js';
import { openPostgresStore } from './open-pg.js';

let s: Store;
beforeAll(async () => {
  const db = await freshDatabase('smoke');
  s = openPostgresStore(db.url, 'prod-a');
}, POSTGRES_HOOK_TIMEOUT);
afterAll(() => s?.close());

it('works', () => {
  expect(s.schemaVersion()).toBe(3);
  s.kv.set('a', { b: 1 });
  expect(s.kv.get('a')).toEqual({ b: 1 });
});

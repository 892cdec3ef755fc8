/**
 * Child process for store.test.ts: writes transactions of exactly two audit rows and one outbox row,
 * numbered 0, 1, 2 …, as fast as it can, printing each committed number, until it is killed.
 */
import { openStore } from '../../src/store/store.js';

const path = process.argv[2];
if (!path) throw new Error('usage: kill-writer.ts DB_PATH');
const store = openStore(path);
const filler = 'x'.repeat(2048);
for (let i = 0; ; i++) {
  store.transaction(() => {
    store.audit.append({ at: i, actor: 'writer', action: 'first', result: 'ok', details: { i, filler } });
    store.outbox.enqueue('test', `key-${i % 7}`, { i, filler });
    store.audit.append({ at: i, actor: 'writer', action: 'second', result: 'ok', details: { i } });
  });
  process.stdout.write(`${i}\n`);
}

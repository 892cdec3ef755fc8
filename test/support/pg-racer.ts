/**
 * Child process for src/store/pg/pg-race.test.ts: one of several processes on one cluster schema that,
 * at the same signal, open-or-touch the same incidents, race to claim each (compare-and-set) and append a
 * journal row to each. Prints `ready`, waits for `go` on stdin, then prints `{"wins":n}`.
 */
import { createInterface } from 'node:readline';
import { openPostgresStore } from '../../src/store/pg/open-pg.js';

const [url, cluster, countText] = process.argv.slice(2);
if (!url || !cluster || !countText) throw new Error('usage: pg-racer.ts DATABASE_URL CLUSTER COUNT');
const count = Number(countText);
const store = openPostgresStore(url, cluster);
process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
await lines.next();
let wins = 0;
for (let i = 0; i < count; i++) {
  const { incident } = store.incidents.openOrTouch({
    node: `node-${i}`,
    faultKey: 'xid:79:gpu0',
    category: 'XID_CRITICAL_79',
    severity: 'critical',
    recommendedAction: 'replace',
    plannedAction: 'replace',
    mode: 'auto',
    explanation: 'race',
    source: 'rules',
    evidence: [],
    preexisting: false,
  });
  if (store.incidents.transition(incident.id, ['detected'], 'cordoned', `claimed by ${process.pid}`)) wins++;
  store.steps.begin(incident.id, 'cordon', { pid: process.pid });
}
process.stdout.write(`${JSON.stringify({ wins })}\n`);
store.close();

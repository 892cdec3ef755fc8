import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from './src/config/config.js';
import { silentLogger } from './src/log/logger.js';
import { createSensing, initialPlan } from './src/main.js';
import { Monitor } from './src/monitor/monitor.js';
import { startSimulatorProcess } from './src/sim/process.js';
import { openStore } from './src/store/index.js';
const n = Number(process.argv[2] ?? 1000);
const sim = await startSimulatorProcess({ nodes: n, slack: false, logLimit: 1000, prometheus: { scrapeIntervalMs: 5000 } });
const dir = mkdtempSync(join(tmpdir(), 'prof-'));
const config = loadConfig({ ...sim.env, DCGM_SOURCE: 'prometheus', DB_PATH: join(dir, 'db'), LOG_LEVEL: 'silent', CLASSIFIER: 'rules', POD_NAMESPACE: 'x' }, { namespaceFile: join(dir, 'nf') });
const store = openStore(config.store.dbPath);
const sensing = createSensing(config, { logger: silentLogger(), store });
await sensing.start();
const monitor = new Monitor({ listNodes: () => sensing.watcher.list(), collector: sensing.collector, classifier: sensing.classifier, store, plan: initialPlan(config), intervalMs: 0, concurrency: 32, nodeTimeoutMs: 10000, retainSnapshots: false });
const cpu = (f: () => Promise<unknown>) => async () => { const c0 = process.cpuUsage(); const t0 = performance.now(); await f(); const c = process.cpuUsage(c0); return `${Math.round((c.user + c.system) / 1000)} ms CPU, ${Math.round(performance.now() - t0)} ms wall`; };
for (let i = 0; i < 4; i++) console.log('scanOnce', await cpu(() => monitor.scanOnce())());
const nodes = sensing.watcher.list();
const sig = new AbortController().signal;
const c = sensing.collector as any;
for (let i = 0; i < 3; i++) {
  console.log('beforeScan', await cpu(() => c.beforeScan())());
  console.log('collect all', await cpu(async () => { for (const nd of nodes) await c.collect(nd, sig); })());
  const snaps = []; for (const nd of nodes) snaps.push(await c.collect(nd, sig));
  console.log('classify all', await cpu(async () => { for (const s of snaps) sensing.classifier.rules(s); })());
}
await sensing.stop(); store.close(); await sim.close();

import { runPrometheusBenchSize, prometheusMarkdown } from './src/bench/prometheus.js';
const r = await runPrometheusBenchSize({ nodes: Number(process.argv[2] ?? 100), scans: 2, progress: (l) => console.error(l) });
console.log(prometheusMarkdown([r]));
console.log(r.openIncidents, r.exact);

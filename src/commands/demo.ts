import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createApp } from '../app/app.js';
import type { Config } from '../config/config.js';
import { createLogger } from '../log/logger.js';
import { type Simulator, startSimulator } from '../sim/index.js';
import type { ChatPort } from '../slack/chat-port.js';
import { ConsoleChat } from '../slack/console-chat.js';
import { CliError } from './cli-error.js';
import { configOrExit } from './load-config.js';

/**
 * `gpu-medic demo`: the real bot (monitor, classifier, remediation engine, chat) against the built-in
 * simulated EKS cluster, with a scripted fault story. Chat goes to the console unless Slack tokens are
 * set; `/gpu …` lines typed on stdin are answered.
 */
export async function main(argv: string[]): Promise<number> {
  const { nodes, interval, duration } = parseDemoArgs(argv);
  const useSlack = Boolean(process.env.SLACK_BOT_TOKEN && process.env.SLACK_CHANNEL);
  // Real minutes scaled to seconds: after a boot the device plugin and the exporter come back after the node.
  const sim = await startSimulator({
    nodes,
    rebootDelayMs: 4000,
    replaceDelayMs: 6000,
    devicePluginDelayMs: 3000,
    exporterReadyDelayMs: 2000,
    // The GPU Operator's DCGM pods: the GPU reset runs nvidia-smi in them (the stock EKS agent image has none).
    dcgmServer: { style: 'gpu-operator' },
    slack: false,
  });
  const dir = mkdtempSync(join(tmpdir(), 'gpu-medic-demo-'));
  const config = configOrExit(demoEnv(sim, dir, interval, useSlack));
  const logger = createLogger({ level: config.log.level });
  const consoleFor = (port: ChatPort) => new ConsoleChat({ chat: port, userId: 'UDEMO', write: say });
  let console_: ConsoleChat | undefined;
  // With Slack tokens the alerts and threads go to the channel (through the outbox, as in `run`), else to
  // the console; either way the console answers `/gpu …` typed on stdin.
  const app = await createApp(config, {
    logger,
    engine: { pollMs: 1000 },
    localChat: (port) => {
      console_ = consoleFor(port);
      return console_;
    },
  });
  const stdinChat = console_ ?? consoleFor(app.chat);
  printBanner(sim, config, { nodes, interval, useSlack });

  await app.start();
  const timers = scriptFaults(sim, interval);
  if (process.stdin.isTTY || !process.stdin.readableEnded)
    stdinChat.attach(process.stdin).catch(() => undefined);

  await new Promise<void>((resolve) => {
    const done = () => resolve();
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
    if (duration !== undefined) timers.push(setTimeout(done, duration * 1000));
  });
  say('\nstopping …');
  for (const t of timers) clearTimeout(t);
  await app.stop();
  await sim.close();
  if (!process.env.DB_PATH) rmSync(dir, { recursive: true, force: true });
  process.stdin.pause();
  return 0;
}

const say = (t: string) => process.stdout.write(`${t}\n`);

function parseDemoArgs(argv: string[]): { nodes: number; interval: number; duration?: number } {
  const { values } = parseArgs({
    args: argv,
    options: {
      nodes: { type: 'string', default: '8' },
      duration: { type: 'string' },
      interval: { type: 'string', default: '5' },
    },
  });
  const nodes = Number(values.nodes);
  const interval = Number(values.interval);
  const duration = values.duration === undefined ? undefined : Number(values.duration);
  if (!Number.isInteger(nodes) || nodes < 2 || nodes > 5000)
    throw new CliError('--nodes must be an integer from 2 to 5000', 2);
  if (!(interval > 0)) throw new CliError('--interval must be a positive number of seconds', 2);
  if (duration !== undefined && !(duration > 0))
    throw new CliError('--duration must be a positive number of seconds', 2);
  return { nodes, interval, ...(duration !== undefined ? { duration } : {}) };
}

/** The demo's configuration: the simulator's endpoints, a throw-away database and demo-sized limits. */
function demoEnv(sim: Simulator, dir: string, interval: number, useSlack: boolean): NodeJS.ProcessEnv {
  // The AWS SDK reads its endpoint and (fake) credentials from the process environment.
  Object.assign(process.env, sim.env);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DB_PATH: process.env.DB_PATH ?? join(dir, 'gpu-medic.db'),
    MONITOR_INTERVAL: String(interval),
    CLASSIFIER: process.env.CLASSIFIER ?? 'rules',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    REMEDIATIONS_PER_HOUR: process.env.REMEDIATIONS_PER_HOUR ?? '20',
    // The story works on three nodes at once (the replaced one still counts for 10 minutes); at the default
    // 20 % a small demo fleet trips the breaker and the scripted automatic reset and reboot are never shown.
    MAX_UNHEALTHY_PERCENT: process.env.MAX_UNHEALTHY_PERCENT ?? '75',
    // The reset runs while the replacement of another node is still under way.
    MAX_CONCURRENT_REMEDIATIONS: process.env.MAX_CONCURRENT_REMEDIATIONS ?? '2',
    CLOUDWATCH_ENABLED: process.env.CLOUDWATCH_ENABLED ?? 'true',
  };
  if (!useSlack) {
    delete env.SLACK_BOT_TOKEN;
    delete env.SLACK_API_URL;
  } else if (!env.SLACK_SIGNING_SECRET && !env.SLACK_APP_TOKEN) {
    // The demo only posts; it never receives a Slack request, so there is nothing to verify. The config
    // still wants a secret for HTTP mode: a random one that nobody knows.
    env.SLACK_SIGNING_SECRET = randomBytes(16).toString('hex');
  }
  return env;
}

function printBanner(
  sim: Simulator,
  config: Config,
  o: { nodes: number; interval: number; useSlack: boolean },
): void {
  say('gpu-medic demo — the real bot against a simulated EKS cluster');
  say(`  cluster      ${config.clusterName}: ${o.nodes} GPU nodes × 8 H100 (+1 system node)`);
  say(`  kubeconfig   ${sim.kubeconfigPath}`);
  say(`  Kubernetes   ${sim.k8s.url}`);
  say(`  AWS          ${sim.aws.url} (EC2, Auto Scaling, CloudWatch, SNS, Lambda, Bedrock)`);
  if (sim.control)
    say(`  control API  ${sim.control.url}  (POST /faults {"node","gpu","kind":"xid","xid":79})`);
  say(`  database     ${config.store.dbPath}`);
  say(
    `  scans every  ${o.interval}s · chat on ${o.useSlack ? `Slack ${config.slack.channel}` : 'this console'}`,
  );
  say('Type `/gpu status`, `/gpu help` … and Enter. Ctrl-C to stop.\n');
}

/** The scripted fault story; returns its timers. */
function scriptFaults(sim: Simulator, interval: number): NodeJS.Timeout[] {
  const names = sim.cluster
    .listNodes()
    .filter((n) => n.status?.capacity?.['nvidia.com/gpu'])
    .map((n) => n.metadata?.name ?? '');
  const timers: NodeJS.Timeout[] = [];
  const at = (seconds: number, what: string, fn: () => void) =>
    timers.push(
      setTimeout(() => {
        say(`\n💉 [simulator] ${what}`);
        fn();
      }, seconds * 1000),
    );
  // Three different nodes whatever --nodes is (with 4 nodes, indices 4 and 6 both clamped to the last one
  // and the ECC fault landed on the node already showing the XID 13).
  const pick = (i: number) => names[i % names.length] ?? '';
  const a = pick(1);
  const b = pick(names.length > 4 ? 4 : 2);
  const c = pick(names.length > 6 ? 6 : 3);
  const d = pick(names.length > 6 ? 3 : 0);
  at(interval + 1, `XID 79 (GPU fallen off the bus) on ${a} GPU 2`, () => sim.cluster.injectXid(a, 2, 79));
  at(interval * 2 + 2, `XID 13 (application fault) on ${c} GPU 0 — alert only`, () =>
    sim.cluster.injectXid(c, 0, 13),
  );
  at(interval * 3 + 1, `XID 119 (GSP RPC timeout) on ${d} GPU 3 — a GPU reset, no reboot`, () =>
    sim.cluster.injectXid(d, 3, 119),
  );
  // The simulated exporters run dcgm-exporter's stock counters, which carry no ECC: node b runs gpu-medic's
  // counters CSV (manifests/dcgm-exporter/), so its DBE is seen and `/gpu status` shows the coverage gap.
  sim.cluster.setCounters(b, 'full');
  at(interval * 6, `uncorrectable ECC (DBE) on ${b} GPU 5 (its exporter runs the full counter set)`, () =>
    sim.cluster.injectEcc(b, 5, { dbe: 2 }),
  );
  return timers;
}

/**
 * The real ChatPort (the services and read models of a runtime against the simulated cluster) through the
 * same contract as the recording fake the Slack listener tests use (test/support/recording-chat-port.test.ts).
 */
import { createChatPort } from '../../src/app/chat.js';
import { createRuntime } from '../../src/app/runtime.js';
import { loadConfig } from '../../src/config/config.js';
import { silentLogger } from '../../src/log/logger.js';
import { startSimulator } from '../../src/sim/index.js';
import { describeChatPortContract } from '../support/chat-port-contract.js';
import { suiteSandbox } from '../support/sim-runtime.js';
import { waitFor } from '../support/wait.js';

const sandbox = suiteSandbox('gpu-medic-chat-port-');
let dbCounter = 0;

describeChatPortContract('the runtime’s port over the services and the store', async () => {
  // With DCGM host-engine pods, so `runDiagnostics` runs `dcgmi diag` in them.
  const sim = await startSimulator({ nodes: 2, slack: false, controlPort: false, dcgmServer: true });
  Object.assign(process.env, sim.env);
  const config = loadConfig({
    ...sim.env,
    DB_PATH: sandbox.path(`chat-port-${++dbCounter}.db`),
    // One scan at start; none during the test, so nothing but the test changes the incident.
    MONITOR_INTERVAL: '3600',
    CLASSIFIER: 'rules',
    DRY_RUN: 'true',
    LOG_LEVEL: 'silent',
  });
  // Authorization is the Slack layer's (it checks admins before calling the port), as in `run`.
  const rt = await createRuntime(config, {
    logger: silentLogger(),
    authorize: () => true,
    engine: { pollMs: 100 },
  });
  await rt.start();
  const gpuNodes = sim.cluster
    .listNodes()
    .filter((n) => n.status?.capacity?.['nvidia.com/gpu'])
    .map((n) => n.metadata.name);
  await waitFor('the first scan of every GPU node', () =>
    gpuNodes.length > 0 && gpuNodes.every((n) => rt.lastScan.has(n)) ? true : undefined,
  );
  const node = gpuNodes[0] ?? '';
  const { incident } = rt.store.incidents.openOrTouch({
    node,
    instanceId: sim.cluster.nodeInfo(node)?.instanceId,
    faultKey: 'xid:79:gpu3',
    category: 'XID_CRITICAL_79',
    severity: 'critical',
    recommendedAction: 'replace',
    plannedAction: 'replace',
    mode: 'approve',
    xid: 79,
    gpu: 3,
    explanation: 'GPU 3 has fallen off the bus.',
    source: 'rules',
    evidence: ['NVRM: Xid (PCI:0000:53:00): 79, GPU has fallen off the bus.'],
    state: 'awaiting_approval',
    preexisting: false,
  });
  return {
    port: createChatPort(rt),
    node,
    pendingIncidentId: incident.id,
    async close() {
      await rt.stop();
      await sim.close();
    },
  };
});

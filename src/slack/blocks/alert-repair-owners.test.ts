/** The alert for nodes someone else repairs or owns: EKS Auto Mode (no reboot) and EKS node auto repair. */
import { describe, expect, it } from 'vitest';
import { slackIncident, slackT0 } from '../../../test/support/recording-chat-port.js';
import type { Incident } from '../../domain/incident.js';
import { AlertButtonActions, type AlertView, alertMessage, decisionLine } from './alert.js';
import { assertSlackLimits } from './limits.js';
import { threadReply } from './thread.js';

const t0 = slackT0;

const incident: Incident = slackIncident({
  id: 'inc-auto',
  node: 'i-0abc1234def567890',
  instanceType: 'p5.48xlarge',
  nodeGroup: undefined,
  faultKey: 'ecc_dbe:gpu0',
  category: 'ECC_ERROR',
  recommendedAction: 'reboot',
  xid: undefined,
  gpu: 0,
  explanation: 'Uncorrectable ECC error.',
  evidence: ['DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{gpu="0"} 2'],
});

function actionIds(view: AlertView): string[] {
  const msg = alertMessage(view);
  return msg.blocks.flatMap((b) =>
    b.type === 'actions' ? b.elements.map((e) => ('action_id' in e ? String(e.action_id) : '')) : [],
  );
}

function texts(view: AlertView): string {
  return JSON.stringify(alertMessage(view).blocks);
}

describe('alert of an EKS Auto Mode node', () => {
  const view: AlertView = { incident, cluster: 'prod', node: { autoMode: true } };

  it('offers no Reboot, says why, and the Replace confirmation says the Node is deleted', () => {
    // A GPU reset does not touch the instance: it stays on Auto Mode nodes.
    expect(actionIds(view)).toEqual([
      'gpu_reset',
      'gpu_replace',
      'gpu_cordon',
      'gpu_diagnose',
      'gpu_exclude',
      'gpu_dismiss',
    ]);
    expect(texts(view)).toMatch(/No Reboot:.*EKS Auto Mode node.*cannot be rebooted through the EC2 API/);
    expect(texts(view)).toMatch(/then delete the Node; EKS Auto Mode removes its instance/);
    assertSlackLimits(alertMessage(view).blocks);
  });

  it('other nodes keep all seven buttons', () => {
    expect(actionIds({ incident, cluster: 'prod' })).toHaveLength(AlertButtonActions.length);
  });
});

describe('alert of a node left to EKS node auto repair', () => {
  const deferred: AlertView = {
    incident: { ...incident, state: 'detected', mode: 'auto' },
    cluster: 'prod',
    autoRepair: {
      condition: 'AcceleratedHardwareReady',
      reason: 'NvidiaXID79Error',
      until: t0 + 20 * 60_000,
    },
  };

  it('shows no buttons, and says EKS will act and gpu-medic watches', () => {
    expect(actionIds(deferred)).toEqual([]);
    expect(decisionLine(deferred)).toMatch(
      /EKS node auto repair will act on AcceleratedHardwareReady \(NvidiaXID79Error\).*does not touch the node/,
    );
  });

  it('thread lines: deferred, and each outcome', () => {
    const base = { incidentId: 'inc-auto', node: 'n1', state: 'detected' as const, at: t0 };
    expect(
      threadReply({
        ...base,
        step: 'auto_repair_deferred',
        details: {
          condition: 'AcceleratedHardwareReady',
          status: 'False',
          reason: 'NvidiaXID79Error',
          owner: 'managed-node-group',
          nodeGroup: 'gpu-ng-1',
          waitMs: 600_000,
          windowMs: 1_200_000,
          action: 'replace',
        },
      }).text,
    ).toMatch(
      /EKS node auto repair will act \(node group gpu-ng-1\): AcceleratedHardwareReady=False \(NvidiaXID79Error\), repaired after 10 ?m(in)? — gpu-medic does not touch n1 \(its policy: replace\)/,
    );
    expect(
      threadReply({ ...base, step: 'auto_repair_outcome', details: { outcome: 'rebooted' } }).text,
    ).toMatch(/EKS node auto repair rebooted n1/);
    expect(
      threadReply({ ...base, step: 'auto_repair_outcome', details: { outcome: 'replaced' } }).text,
    ).toMatch(/EKS node auto repair replaced n1/);
    expect(
      threadReply({
        ...base,
        step: 'auto_repair_outcome',
        details: { outcome: 'not_acted', windowMs: 1_200_000, policyAction: 'replace' },
      }).text,
    ).toMatch(/did not act on n1 within 20 ?m(in)? — gpu-medic's policy applies now \(replace\)/);
    expect(threadReply({ ...base, step: 'resolved', details: { byAutoRepair: 'rebooted' } }).text).toMatch(
      /Resolved by EKS node auto repair: n1 was rebooted/,
    );
  });

  it('a Karpenter replace with nothing pending reads "the pool provisions on demand"', () => {
    const base = { incidentId: 'i', node: 'n1', state: 'replacing' as const, at: t0 };
    expect(
      threadReply({ ...base, step: 'replacement_ready', details: { group: 'gpu', onDemand: true } }).text,
    ).toMatch(
      /No pod is waiting for a GPU node, so NodePool gpu starts no successor now: it provisions on demand/,
    );
    expect(
      threadReply({ ...base, step: 'resolved', details: { action: 'replace', onDemand: true } }).text,
    ).toMatch(/n1 was replaced — the pool provisions on demand/);
    expect(
      threadReply({ ...base, step: 'replace_issued', details: { method: 'auto-mode', nodePool: 'gpu-auto' } })
        .text,
    ).toMatch(/deleted node n1 \(EKS Auto Mode.*not touched through EC2\)/);
  });
});

/**
 * The alert: one root message per incident, updated in place (chat.update) as the incident moves.
 * Its buttons disappear once anything has been decided, so a late or second click has nothing to press
 * (the services still make the state change atomic; this is the visible half).
 */
import type { types } from '@slack/bolt';
import type { Incident, PolicyMode, RemediationAction } from '../../domain/incident.js';
import { isOpen } from '../../domain/incident.js';
import {
  capitalize,
  escapeMrkdwn,
  faultLabel,
  formatDuration,
  inlineCode,
  policyLine,
  severityEmoji,
  slackDate,
  sourceLabel,
  stateLabel,
  userMention,
} from '../format.js';
import { codeSection, context, fieldsSection, header, type KnownBlock, plain, section } from './kit.js';
import { SlackLimits, truncate } from './limits.js';

/** What an operator can press on an alert. */
export const AlertButtonActions = [
  'reset',
  'replace',
  'reboot',
  'cordon',
  'diagnose',
  'exclude',
  'dismiss',
] as const;
export type AlertButtonAction = (typeof AlertButtonActions)[number];

export const alertActionIds = {
  reset: 'gpu_reset',
  replace: 'gpu_replace',
  reboot: 'gpu_reboot',
  cordon: 'gpu_cordon',
  diagnose: 'gpu_diagnose',
  exclude: 'gpu_exclude',
  dismiss: 'gpu_dismiss',
} as const satisfies Record<AlertButtonAction, string>;

/** For `app.action(alertActionIdPattern, …)`: matches exactly the alert buttons. */
export const alertActionIdPattern = /^gpu_(reset|replace|reboot|cordon|diagnose|exclude|dismiss)$/;

/** A button's words where they are not its action's name. */
const buttonLabel: Partial<Record<AlertButtonAction, string>> = {
  reset: 'Reset GPU',
  diagnose: 'Run diagnostics',
};

/** `gpu_reboot` → `reboot`; anything else → undefined. */
export function alertActionFromId(actionId: string): AlertButtonAction | undefined {
  const m = alertActionIdPattern.exec(actionId);
  return m ? (m[1] as AlertButtonAction) : undefined;
}

/**
 * The button value: compact JSON `{"i":incidentId,"n":node,"c":cluster}`; read back with parseButtonValue.
 * The cluster routes a click that reaches another cluster's process (one Slack app serves the fleet).
 */
export function encodeButtonValue(incidentId: string, node: string, cluster?: string): string {
  return JSON.stringify({ i: incidentId, n: node, ...(cluster !== undefined ? { c: cluster } : {}) });
}

export interface AlertView {
  incident: Incident;
  cluster: string;
  /**
   * Node context, where the incident itself does not carry it. `autoMode`: an EKS Auto Mode node — its
   * instance is EKS's, so there is no Reboot button and Replace deletes the Node.
   */
  node?: { instanceId?: string; instanceType?: string; nodeGroup?: string; autoMode?: boolean };
  /** The incident is left to EKS node auto repair (the condition it acts on): no buttons while it is. */
  autoRepair?: { condition: string; reason?: string; until?: number };
  /** The policy's decision; defaults to the incident's plannedAction / mode. */
  decision?: { plannedAction: RemediationAction; mode: PolicyMode };
  /** The current remediation step in words: "Draining: 3 of 5 pods evicted". */
  statusLine?: string;
  /** A human pressed a button (or ran the equivalent command). */
  actedBy?: { action: AlertButtonAction; userId: string };
  dryRun?: boolean;
}

export interface SlackMessage {
  text: string;
  blocks: KnownBlock[];
}

const confirmCopy: Partial<
  Record<AlertButtonAction, { title: string; text: (node: string, instance: string) => string }>
> = {
  reset: {
    title: 'Reset the GPU?',
    text: (node) =>
      `Cordon and drain ${node}, then reset the faulty GPU with nvidia-smi (all GPUs together on NVSwitch types); no reboot, no EC2 call. Running pods are evicted (PodDisruptionBudgets are honoured).`,
  },
  replace: {
    title: 'Replace this node?',
    text: (node, instance) =>
      `Cordon and drain ${node}, then terminate ${instance}; its node group or Karpenter brings up a new node. Running pods are evicted.`,
  },
  reboot: {
    title: 'Reboot this node?',
    text: (node, instance) =>
      `Cordon and drain ${node}, then reboot ${instance}. Running pods are evicted (PodDisruptionBudgets are honoured).`,
  },
};

/** Replace of an EKS Auto Mode node goes through the Node, not its (EKS-owned) instance. */
const autoModeReplaceCopy = {
  title: 'Replace this node?',
  text: (node: string) =>
    `Cordon and drain ${node}, then delete the Node; EKS Auto Mode removes its instance and starts a new node when pods need one. Running pods are evicted.`,
};

function button(
  action: AlertButtonAction,
  value: string,
  node: string,
  instance: string,
  autoMode = false,
): types.Button {
  const b: types.Button = {
    type: 'button',
    action_id: alertActionIds[action],
    text: plain(buttonLabel[action] ?? capitalize(action), SlackLimits.buttonText),
    value,
  };
  const confirm =
    autoMode && action === 'replace'
      ? { title: autoModeReplaceCopy.title, text: (n: string) => autoModeReplaceCopy.text(n) }
      : confirmCopy[action];
  if (confirm) {
    b.style = 'danger';
    b.confirm = {
      title: plain(confirm.title, SlackLimits.confirmTitle),
      text: plain(confirm.text(truncate(node, 120), instance), SlackLimits.confirmText),
      confirm: plain(capitalize(action), SlackLimits.confirmButton),
      deny: plain('Cancel', SlackLimits.confirmButton),
      style: 'danger',
    };
  } else if (action === 'cordon') {
    // Cordoning is the safe, reversible first step: it stops new work landing on a suspect GPU.
    b.style = 'primary';
  }
  return b;
}

/**
 * Why there are no buttons, or undefined when there should be buttons.
 * Order matters: a closed incident says how it ended, even if someone acted on it on the way.
 */
export function decisionLine(view: AlertView): string | undefined {
  const { incident, actedBy } = view;
  const action = view.decision?.plannedAction ?? incident.plannedAction;
  const mode = view.decision?.mode ?? incident.mode;
  const reason = incident.stateReason ? `: ${escapeMrkdwn(incident.stateReason)}` : '';
  const by = actedBy ? ` by ${userMention(actedBy.userId)}` : '';
  if (view.autoRepair && incident.state === 'detected') {
    const why = `${escapeMrkdwn(view.autoRepair.condition)}${view.autoRepair.reason ? ` (${escapeMrkdwn(view.autoRepair.reason)})` : ''}`;
    const until = view.autoRepair.until !== undefined ? ` until ${slackDate(view.autoRepair.until)}` : '';
    return `🛠️ EKS node auto repair will act on ${why} — gpu-medic does not touch the node and watches${until}`;
  }
  if (!isOpen(incident.state)) {
    switch (incident.state) {
      case 'resolved': {
        const took =
          incident.closedAt !== undefined
            ? ` in ${formatDuration(incident.closedAt - incident.firstSeen)}`
            : '';
        return `✅ Resolved${took}${reason}`;
      }
      case 'dismissed':
        return `🙈 Dismissed${by}${reason}`;
      case 'escalated':
        return `⬆️ Escalated to a human${reason}`;
      case 'failed':
        return `❌ Remediation failed${reason}`;
      default:
        return `🚫 Cancelled${reason}`;
    }
  }
  if (actedBy) {
    if (actedBy.action === 'exclude') return `🙈 Node excluded${by} — gpu-medic will not touch it`;
    if (actedBy.action === 'dismiss') return `🙈 Dismissed${by}`;
    return `✋ ${capitalize(actedBy.action)} approved${by}`;
  }
  if (mode === 'auto' && action !== 'none') {
    return view.dryRun
      ? `🧪 Automatic ${action} (dry run — nothing is changed)`
      : `⚙️ Automatic ${action} in progress`;
  }
  if (incident.state !== 'detected' && incident.state !== 'awaiting_approval') {
    return `⚙️ ${capitalize(action === 'none' ? 'remediation' : action)} in progress (${stateLabel[incident.state]})`;
  }
  return undefined;
}

/** The alert for one incident: header, facts, explanation, evidence, policy, and buttons or the decision. */
export function alertMessage(view: AlertView): SlackMessage {
  const { incident, cluster } = view;
  const instanceType = view.node?.instanceType ?? incident.instanceType;
  const nodeGroup = view.node?.nodeGroup ?? incident.nodeGroup;
  const instanceId = view.node?.instanceId ?? incident.instanceId;
  const action = view.decision?.plannedAction ?? incident.plannedAction;
  const mode = view.decision?.mode ?? incident.mode;
  const emoji = severityEmoji[incident.severity];

  const blocks: KnownBlock[] = [
    header(`${emoji} ${incident.severity} · ${incident.node}${instanceType ? ` · ${instanceType}` : ''}`),
    fieldsSection([
      ['Node', inlineCode(incident.node)],
      ['Instance', instanceId ? inlineCode(instanceId) : '—'],
      ['Node group', nodeGroup ? escapeMrkdwn(nodeGroup) : '—'],
      ['Cluster', escapeMrkdwn(cluster)],
      ['GPU', incident.gpu !== undefined ? `GPU ${incident.gpu}` : '—'],
      ['XID / Category', escapeMrkdwn(faultLabel(incident))],
      ['First seen', slackDate(incident.firstSeen)],
      ['Source', sourceLabel[incident.source]],
      [
        'State',
        `${stateLabel[incident.state]} · seen in ${incident.count} scan${incident.count === 1 ? '' : 's'}`,
      ],
    ]),
    section(
      `*Why:* ${escapeMrkdwn(incident.explanation || 'No explanation given.')}` +
        (incident.source !== 'rules'
          ? '\n_The category came from the LLM; the action comes from policy._'
          : '') +
        (incident.preexisting ? '\n_Already present at start-up: a sticky value of unknown age._' : ''),
    ),
    codeSection(incident.evidence, '*Evidence*'),
  ];

  const contextLines = [policyLine(action, mode, incident.state)];
  if (view.statusLine) contextLines.push(escapeMrkdwn(view.statusLine));
  if (view.dryRun) contextLines.push('🧪 Dry run: nothing is changed');
  blocks.push(context(contextLines.join(' · ')));

  const decided = decisionLine(view);
  const value = encodeButtonValue(incident.id, incident.node, cluster);
  if (decided) {
    blocks.push(context(decided));
  } else if (value.length > SlackLimits.buttonValue) {
    // Cannot happen with our ids; if it ever does, the alert must still post, without broken buttons.
    blocks.push(
      context(
        `Buttons unavailable for this incident; use \`/gpu\` commands on ${inlineCode(incident.node)}.`,
      ),
    );
  } else {
    const instance = instanceId ?? 'its EC2 instance';
    const autoMode = view.node?.autoMode === true;
    blocks.push({
      type: 'actions',
      block_id: truncate(`gpu_alert_actions:${incident.id}`, SlackLimits.blockId),
      elements: AlertButtonActions.filter((a) => !(autoMode && a === 'reboot')).map((a) =>
        button(a, value, incident.node, instance, autoMode),
      ),
    });
    if (autoMode) {
      blocks.push(
        context(
          `No Reboot: ${inlineCode(incident.node)} is an EKS Auto Mode node — EKS owns its instance, which cannot be rebooted through the EC2 API. Replace deletes the Node and Auto Mode starts a new one.`,
        ),
      );
    }
  }

  return { text: alertText(view, decided), blocks };
}

/** The notification / fallback text: everything a lock-screen preview needs, in one line. */
function alertText(view: AlertView, decided: string | undefined): string {
  const { incident } = view;
  const instanceType = view.node?.instanceType ?? incident.instanceType;
  const action = view.decision?.plannedAction ?? incident.plannedAction;
  const mode = view.decision?.mode ?? incident.mode;
  const where = instanceType ? `${incident.node} (${instanceType})` : incident.node;
  const gpu = incident.gpu !== undefined ? ` on GPU ${incident.gpu}` : '';
  const parts = [
    `${severityEmoji[incident.severity]} ${incident.severity} GPU fault on ${where} in ${escapeMrkdwn(view.cluster)}: ${escapeMrkdwn(faultLabel(incident))}${gpu}`,
    escapeMrkdwn(incident.explanation),
    policyLine(action, mode, incident.state),
  ];
  if (decided) parts.push(decided);
  return truncate(parts.filter((p) => p.length > 0).join(' — '), SlackLimits.messageText);
}

/**
 * The alert's buttons: Replace, Reboot, Cordon, Exclude, Dismiss. Ack at once, authorize server-side, then
 * call the services. Two clicks (or two people) race to the services' atomic state change: one wins and
 * updates the alert, the other is told who is already on it.
 */
import type { App } from '@slack/bolt';
import {
  type AlertButtonAction,
  type AlertView,
  alertActionFromId,
  alertActionIdPattern,
  type SlackMessage,
} from '../../blocks/alert.js';
import { slackActor } from '../../chat-port.js';
import { defaultExclusionMs, parseButtonValue } from '../../commands/parse.js';
import { userMention } from '../../format.js';
import {
  auditDenial,
  deniedMessage,
  diagMessage,
  genericFailure,
  resultMessage,
  textMessage,
} from '../commands/handle-gpu-command.js';
import type { ListenerDeps } from '../deps.js';
import { sendEphemeral } from '../ephemeral.js';
import { routeClick } from '../fleet-route.js';

export interface AlertClickReply {
  message: SlackMessage;
  /** The alert as it should look after a successful click (buttons replaced by who did what). */
  update?: AlertView;
}

/** One click on an alert button by `userId`. Never throws. */
export async function handleAlertClick(
  action: AlertButtonAction,
  value: unknown,
  userId: string,
  deps: ListenerDeps,
): Promise<AlertClickReply> {
  try {
    const target = parseButtonValue(value);
    if ('error' in target) {
      deps.logger?.warn({ userId, action, error: target.error }, 'malformed alert button');
      return { message: textMessage('⚠️ That button is not valid. Use `/gpu` commands instead.') };
    }
    const { incidentId, node } = target;
    if (!(await deps.authz.isAdmin(userId))) {
      await auditDenial(deps, userId, `click.${action}`, { node, incidentId });
      deps.logger?.info({ userId, action, incidentId }, 'alert click denied');
      return { message: deniedMessage(`${action} from this alert`) };
    }
    const { chat } = deps;
    const actor = slackActor(userId);
    // Exclude and Run diagnostics act on the node by name. Node names repeat across clusters, and an alert
    // posted before the fleet carries no cluster: act only when the incident is this cluster's and on that
    // node, never on a namesake in another cluster.
    if (action === 'exclude' || action === 'diagnose') {
      const view = await chat.alertView(incidentId);
      if (view?.incident.node !== node) {
        deps.logger?.warn(
          { userId, action, incidentId, node },
          'alert click for an incident this cluster does not have',
        );
        return {
          message: textMessage(
            `⚠️ Incident ${incidentId} is not one of this cluster's, so nothing was done to ${node}. ` +
              'Use `/gpu exclude <cluster>/<node>` or `/gpu diag <cluster>/<node>`.',
          ),
        };
      }
    }
    // Changes nothing on the node and leaves the alert as it is: the answer is DCGM's table.
    if (action === 'diagnose') return { message: diagMessage(await chat.runDiagnostics(node, 1, actor)) };
    const result =
      action === 'exclude'
        ? await chat.exclude(
            node,
            {
              until: chat.now() + defaultExclusionMs,
              reason: `excluded from the alert of incident ${incidentId}`,
            },
            actor,
          )
        : action === 'dismiss'
          ? await chat.dismiss(incidentId, actor, 'dismissed from the alert')
          : await chat.approve(incidentId, actor, action);

    if (!result.ok) {
      if (result.code === 'busy') {
        const view = await chat.alertView(incidentId);
        const who = view?.actedBy ? ` by ${userMention(view.actedBy.userId)}` : '';
        return { message: textMessage(`⏳ Already being handled${who}. ${result.message}`) };
      }
      return { message: resultMessage(result) };
    }
    const view = await chat.alertView(incidentId);
    const update = view ? { ...view, actedBy: { action, userId } } : undefined;
    if (update) await deps.sink?.updateRoot(incidentId, update);
    return update ? { message: resultMessage(result), update } : { message: resultMessage(result) };
  } catch (error) {
    deps.logger?.error({ err: error, userId, action }, 'alert click failed');
    return { message: genericFailure };
  }
}

export function register(app: App, deps: ListenerDeps): void {
  app.action(alertActionIdPattern, async ({ ack, body, action, client, respond }) => {
    await ack();
    const actionId = 'action_id' in action ? action.action_id : '';
    const kind = alertActionFromId(actionId);
    const value = 'value' in action ? action.value : undefined;
    const userId = body.user.id;
    const channel = 'channel' in body ? body.channel?.id : undefined;
    // The alert's thread: the answer of a leader elsewhere goes there.
    const message = 'message' in body ? (body.message as { ts?: string; thread_ts?: string }) : undefined;
    const threadTs = message?.thread_ts ?? message?.ts;
    const routed = kind
      ? routeClick(
          {
            actionId,
            value,
            userId,
            ...(channel ? { channel } : {}),
            ...(threadTs ? { threadTs } : {}),
          },
          deps,
        )
      : undefined;
    const reply = routed
      ? { message: routed }
      : kind
        ? await handleAlertClick(kind, value, userId, deps)
        : { message: textMessage('⚠️ Unknown button.') };
    await sendEphemeral(
      { client, user: userId, respond, ...(channel ? { channel } : {}) },
      reply.message,
      deps.logger,
    );
  });
}

/**
 * A request another process queued for this cluster's leader, executed here exactly as if this process
 * had received it: the same handlers (authorization re-checked here, the audit names the Slack user), the
 * answer to the same person — a click's in the alert's thread, a command's in its channel.
 */
import type { WebClient } from '@slack/web-api';
import type { LeaderRequest } from '../../fleet/requests.js';
import { alertActionFromId } from '../blocks/alert.js';
import { commandConfirmActionIds } from '../blocks/status.js';
import { handleAlertClick } from './actions/alert-buttons.js';
import { handleConfirmClick, handleGpuCommand } from './commands/handle-gpu-command.js';
import { postReplyFile } from './commands/report-file.js';
import type { ListenerDeps } from './deps.js';
import { type EphemeralClient, sendEphemeral } from './ephemeral.js';

export type AnswerClient = EphemeralClient & Pick<WebClient, 'filesUploadV2'>;

/**
 * What the request's row records as its result. `undelivered`: executed, but Slack took no answer (the person
 * sees the effect in the alert's thread, which the outbox delivers, but not this reply).
 */
export interface LeaderAnswer {
  answered: 'thread' | 'channel' | 'user' | 'undelivered';
  text: string;
}

/** Executes one queued request; throws only for a request this release cannot execute. */
export async function executeLeaderRequest(
  req: LeaderRequest,
  deps: ListenerDeps,
  client: AnswerClient,
): Promise<LeaderAnswer> {
  if (req.kind === 'command') {
    const reply = await handleGpuCommand(req.text, req.userId, deps);
    const message = await postReplyFile(client, req.channel, reply, deps.logger);
    const sent = await sendEphemeral(
      { client, channel: req.channel, user: req.userId },
      message,
      deps.logger,
    );
    return { answered: sent ? 'channel' : undelivered(req, deps), text: message.text };
  }
  const alertAction = alertActionFromId(req.actionId);
  const message = alertAction
    ? (await handleAlertClick(alertAction, req.value, req.userId, deps)).message
    : req.actionId === commandConfirmActionIds.confirm || req.actionId === commandConfirmActionIds.cancel
      ? await handleConfirmClick(req.actionId, req.value, req.userId, deps)
      : undefined;
  if (!message) throw new Error(`unknown action ${req.actionId}`);
  const sent = await sendEphemeral(
    {
      client,
      user: req.userId,
      ...(req.channel ? { channel: req.channel } : {}),
      ...(req.threadTs ? { threadTs: req.threadTs } : {}),
    },
    message,
    deps.logger,
  );
  if (!sent) return { answered: undelivered(req, deps), text: message.text };
  return { answered: req.threadTs ? 'thread' : req.channel ? 'channel' : 'user', text: message.text };
}

function undelivered(req: LeaderRequest, deps: ListenerDeps): 'undelivered' {
  deps.logger?.warn(
    { kind: req.kind, user: req.userId },
    'queued request executed, but its answer could not be sent to the person',
  );
  return 'undelivered';
}

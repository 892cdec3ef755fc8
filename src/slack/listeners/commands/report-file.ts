/**
 * Posting `/gpu report`'s CSV to the channel through Slack's external upload (files.getUploadURLExternal, the
 * upload, files.completeUploadExternal: `filesUploadV2`). It needs the bot scope `files:write` and the bot in
 * the channel. When the upload is refused (no `files:write`, not in the channel, a DM the bot cannot post to)
 * the person gets the summary instead, with the reason: nothing is lost and no setting is needed.
 */
import type { WebClient } from '@slack/web-api';
import type { Logger } from 'pino';
import type { SlackMessage } from '../../blocks/alert.js';
import { escapeMrkdwn } from '../../format.js';
import type { CommandReply } from './handle-gpu-command.js';
import { textMessage } from './handle-gpu-command.js';

const WHY: Record<string, string> = {
  missing_scope: 'the app lacks the files:write scope',
  not_in_channel: 'gpu-medic is not in this channel',
  channel_not_found: 'gpu-medic cannot post in this conversation',
  not_allowed_token_type: 'the app token may not upload files',
};

function slackErrorOf(error: unknown): string | undefined {
  const data = (error as { data?: { error?: unknown } } | undefined)?.data;
  return typeof data?.error === 'string' ? data.error : undefined;
}

/** Posts the reply's file when it has one; the ephemeral answer to send either way. Never throws. */
export async function postReplyFile(
  client: Pick<WebClient, 'filesUploadV2'>,
  channel: string,
  reply: CommandReply,
  logger?: Logger,
): Promise<SlackMessage> {
  const file = reply.file;
  if (!file) return reply.message;
  try {
    await client.filesUploadV2({
      channel_id: channel,
      filename: file.filename,
      title: file.title,
      content: file.content,
      initial_comment: file.comment,
    });
    return reply.message;
  } catch (error) {
    const code = slackErrorOf(error);
    logger?.warn({ err: error, channel, code }, 'report file not posted; answering with the summary');
    const why = (code && WHY[code]) ?? `the upload failed (${code ?? 'error'})`;
    return textMessage(
      `${escapeMrkdwn(file.fallback)}\n_No CSV file: ${escapeMrkdwn(why)}. \`gpu-medic report\` writes the full CSV._`,
    );
  }
}

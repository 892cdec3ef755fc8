/**
 * Ephemeral answers: chat.postEphemeral first (it works wherever the bot is), and the interaction's
 * response_url (`respond`) when that fails — e.g. a DM or a channel the bot was never invited to.
 */
import type { Logger } from 'pino';
import type { SlackMessage } from '../blocks/alert.js';

export interface EphemeralClient {
  chat: {
    postEphemeral(args: {
      channel: string;
      user: string;
      text: string;
      blocks?: unknown[];
      thread_ts?: string;
    }): Promise<unknown>;
  };
}

export type Respond = (message: {
  text: string;
  blocks?: unknown[];
  response_type?: 'ephemeral';
  replace_original?: boolean;
}) => Promise<unknown>;

/** Answers one person privately: in the channel (or thread), else through `respond`. False: nothing reached them. */
export async function sendEphemeral(
  target: { client: EphemeralClient; channel?: string; user: string; threadTs?: string; respond?: Respond },
  message: SlackMessage,
  logger?: Logger,
): Promise<boolean> {
  if (target.channel) {
    try {
      await target.client.chat.postEphemeral({
        channel: target.channel,
        user: target.user,
        text: message.text,
        blocks: message.blocks,
        ...(target.threadTs ? { thread_ts: target.threadTs } : {}),
      });
      return true;
    } catch (error) {
      logger?.warn({ err: error, channel: target.channel }, 'postEphemeral failed; trying response_url');
    }
  }
  if (!target.respond) {
    logger?.error({ user: target.user }, 'no way to answer the user');
    return false;
  }
  try {
    await target.respond({ text: message.text, blocks: message.blocks, response_type: 'ephemeral' });
    return true;
  } catch (error) {
    logger?.error({ err: error, user: target.user }, 'ephemeral answer failed');
    return false;
  }
}

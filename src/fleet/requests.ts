/**
 * The requests one process hands to a cluster's leader: a Slack click or a `/gpu` command, with everything
 * the leader needs to execute it as if it had received it (who, where, what). The leader validates the
 * payload when it claims it: a row written by another release or by hand fails with a clear error.
 */
import { z } from 'zod';

const SlackId = z.string().regex(/^[A-Z0-9]{2,40}$/, 'a Slack id');
const Channel = z.string().min(1).max(200);
const SlackTs = z.string().regex(/^\d{1,12}\.\d{1,8}$/, 'a Slack message ts');

/** A click on a button (an alert's, or a command confirmation's), as Slack delivered it. */
export const ActionRequest = z.object({
  kind: z.literal('action'),
  actionId: z.string().min(1).max(255),
  value: z.string().max(2000),
  userId: SlackId,
  channel: Channel.optional(),
  /** The thread the answer goes to: the alert's root message. */
  threadTs: SlackTs.optional(),
});
export type ActionRequest = z.infer<typeof ActionRequest>;

/** A `/gpu` command, its text as typed. */
export const CommandRequest = z.object({
  kind: z.literal('command'),
  text: z.string().max(4000),
  userId: SlackId,
  channel: Channel,
});
export type CommandRequest = z.infer<typeof CommandRequest>;

export const LeaderRequest = z.discriminatedUnion('kind', [ActionRequest, CommandRequest]);
export type LeaderRequest = z.infer<typeof LeaderRequest>;

/** A stored payload → a request, or why it is not one (in words for the request's error column). */
export function parseLeaderRequest(payload: unknown): LeaderRequest | { error: string } {
  const parsed = LeaderRequest.safeParse(payload);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => `${i.path.join('.') || 'payload'}: ${i.message}`);
  return { error: `invalid request payload: ${issues.join('; ')}` };
}

/**
 * How long a queued request waits for its cluster's leader. Older, it is failed unexecuted: a reboot clicked
 * while a cluster's gpu-medic was down must not happen hours later, when it comes back, on a node whose state
 * nobody looked at since.
 */
export const REQUEST_TTL_MS = 10 * 60_000;

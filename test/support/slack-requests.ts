/**
 * Slack's HTTP requests to the app as Slack sends them, for tests of the Bolt receiver: a slash command
 * (form fields), a block_actions click (one form field `payload` holding JSON), and the v0 request signature
 * over them. The receiver checks the signature and the timestamp exactly as in production.
 */
import { createHmac } from 'node:crypto';

/** The signing secret of the in-process tests (the e2e suite gives its children its own). */
export const SLACK_TEST_SECRET = 'test-signing-secret-0123456789';

/** `v0=` + hex HMAC-SHA256(secret, `v0:${ts}:${rawBody}`), as Slack signs requests. */
export function signSlackRequest(body: string, ts: number, secret = SLACK_TEST_SECRET): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${ts}:${body}`).digest('hex')}`;
}

/** POSTs `body` to `<base>/slack/events`, signed now unless told otherwise. */
export function postSlackEvent(
  base: string,
  body: string,
  opts: { contentType?: string; ts?: number; signature?: string; secret?: string } = {},
): Promise<Response> {
  const ts = opts.ts ?? Math.floor(Date.now() / 1000);
  return fetch(`${base}/slack/events`, {
    method: 'POST',
    headers: {
      'Content-Type': opts.contentType ?? 'application/x-www-form-urlencoded',
      'X-Slack-Request-Timestamp': String(ts),
      'X-Slack-Signature': opts.signature ?? signSlackRequest(body, ts, opts.secret),
    },
    body,
  });
}

/** A `/gpu` slash command as Slack posts it (form fields). */
export function slashCommand(text: string, user: string, channelId: string): string {
  return new URLSearchParams({
    token: 'legacy-verification-token',
    team_id: 'T0SIM00001',
    team_domain: 'sim',
    channel_id: channelId,
    channel_name: 'gpu-alerts',
    user_id: user,
    user_name: user.toLowerCase(),
    command: '/gpu',
    text,
    api_app_id: 'A0APP00001',
    // Answers go through chat.postEphemeral on the Slack fake; this URL is only the fallback.
    response_url: 'http://127.0.0.1:9/commands/unused',
    trigger_id: '13345224609.738474920.8088930838d88f008e0',
  }).toString();
}

/** A `block_actions` interaction (one button) as Slack posts it: one form field `payload`. */
export function buttonClick(
  action: { actionId: string; value: string; blockId?: string },
  user: string,
  message: { channelId: string; ts: string; text?: string },
): string {
  const payload = {
    type: 'block_actions',
    user: { id: user, username: user.toLowerCase(), name: user.toLowerCase(), team_id: 'T0SIM00001' },
    api_app_id: 'A0APP00001',
    token: 'legacy-verification-token',
    team: { id: 'T0SIM00001', domain: 'sim' },
    enterprise: null,
    is_enterprise_install: false,
    channel: { id: message.channelId, name: 'gpu-alerts' },
    container: {
      type: 'message',
      message_ts: message.ts,
      channel_id: message.channelId,
      is_ephemeral: false,
    },
    message: { type: 'message', ts: message.ts, text: message.text ?? '' },
    trigger_id: '13345224609.738474920.8088930838d88f008e0',
    response_url: 'http://127.0.0.1:9/actions/unused',
    state: { values: {} },
    actions: [
      {
        type: 'button',
        action_id: action.actionId,
        block_id: action.blockId ?? 'gpu_alert_actions',
        text: { type: 'plain_text', text: 'button', emoji: true },
        value: action.value,
        action_ts: `${Date.now() / 1000}`,
      },
    ],
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

/** Confirm / Cancel under a `/gpu cordon|uncordon|reboot|replace` confirmation. */
import type { App } from '@slack/bolt';
import { commandConfirmActionIds } from '../../blocks/status.js';
import { handleConfirmClick } from '../commands/handle-gpu-command.js';
import type { ListenerDeps } from '../deps.js';
import { sendEphemeral } from '../ephemeral.js';
import { routeClick } from '../fleet-route.js';

const pattern = new RegExp(`^(${commandConfirmActionIds.confirm}|${commandConfirmActionIds.cancel})$`);

export function register(app: App, deps: ListenerDeps): void {
  app.action(pattern, async ({ ack, body, action, client, respond }) => {
    await ack();
    const actionId = 'action_id' in action ? action.action_id : '';
    const value = 'value' in action ? action.value : undefined;
    const userId = body.user.id;
    const channel = 'channel' in body ? body.channel?.id : undefined;
    const message =
      routeClick({ actionId, value, userId, ...(channel ? { channel } : {}) }, deps) ??
      (await handleConfirmClick(actionId, value, userId, deps));
    await sendEphemeral(
      { client, user: userId, respond, ...(channel ? { channel } : {}) },
      message,
      deps.logger,
    );
  });
}

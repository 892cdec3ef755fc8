/** The `/gpu` slash command: ack at once (Slack gives 3 s), then answer ephemerally. */
import type { App } from '@slack/bolt';
import type { ListenerDeps } from '../deps.js';
import { sendEphemeral } from '../ephemeral.js';
import { routeCommand } from '../fleet-route.js';
import { handleGpuCommand } from './handle-gpu-command.js';
import { postReplyFile } from './report-file.js';

export const gpuCommandName = '/gpu';

export function register(app: App, deps: ListenerDeps): void {
  app.command(gpuCommandName, async ({ command, ack, client, respond }) => {
    await ack();
    const text = command.text ?? '';
    const routed = await routeCommand({ text, userId: command.user_id, channel: command.channel_id }, deps);
    const message =
      routed ??
      (await postReplyFile(
        client,
        command.channel_id,
        await handleGpuCommand(text, command.user_id, deps),
        deps.logger,
      ));
    await sendEphemeral(
      { client, channel: command.channel_id, user: command.user_id, respond },
      message,
      deps.logger,
    );
  });
}

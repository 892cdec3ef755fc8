import type { App } from '@slack/bolt';
import { register as alertButtons } from './actions/alert-buttons.js';
import { register as commandConfirm } from './actions/command-confirm.js';
import { register as gpuCommand } from './commands/gpu.js';
import type { ListenerDeps } from './deps.js';
import { register as appHome } from './events/app-home.js';

/** Every listener of the app, one register per Slack surface. */
export function registerListeners(app: App, deps: ListenerDeps): void {
  gpuCommand(app, deps);
  alertButtons(app, deps);
  commandConfirm(app, deps);
  appHome(app, deps);
}

/** App Home: the fleet overview and open incidents, published each time a user opens the tab. */
import type { App } from '@slack/bolt';
import { appHomeView } from '../../blocks/home.js';
import type { ListenerDeps } from '../deps.js';

export function register(app: App, deps: ListenerDeps): void {
  app.event('app_home_opened', async ({ event, client }) => {
    if (event.tab !== undefined && event.tab !== 'home') return;
    try {
      const [summary, open] = await Promise.all([deps.chat.fleetSummary(), deps.chat.openIncidents()]);
      await client.views.publish({ user_id: event.user, view: appHomeView(summary, open) });
    } catch (error) {
      deps.logger?.error({ err: error, user: event.user }, 'app home publish failed');
    }
  });
}

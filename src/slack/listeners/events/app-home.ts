/** App Home: the fleet overview and open incidents, published each time a user opens the tab. */
import type { App } from '@slack/bolt';
import { LEADER_SILENT_AFTER_MS } from '../../../fleet/summary.js';
import { fleetClustersMessage } from '../../blocks/fleet.js';
import { appHomeView } from '../../blocks/home.js';
import type { ListenerDeps } from '../deps.js';

export function register(app: App, deps: ListenerDeps): void {
  app.event('app_home_opened', async ({ event, client }) => {
    if (event.tab !== undefined && event.tab !== 'home') return;
    try {
      await client.views.publish({ user_id: event.user, view: await homeOf(deps) });
    } catch (error) {
      deps.logger?.error({ err: error, user: event.user }, 'app home publish failed');
    }
  });
}

/**
 * This cluster in detail when this process acts for it (its scans are in memory here); every cluster of
 * the fleet, from what their leaders published, when there are others or this process stands by.
 */
async function homeOf(deps: ListenerDeps) {
  const { fleet } = deps;
  const clusters = fleet?.directory.clusters() ?? [];
  const others = fleet !== undefined && clusters.some((c) => c.cluster !== fleet.cluster);
  const detailed = !fleet || fleet.acting();
  const local = detailed
    ? appHomeView(...(await Promise.all([deps.chat.fleetSummary(), deps.chat.openIncidents()])))
    : undefined;
  if (!fleet || (!others && detailed)) return local ?? { type: 'home' as const, blocks: [] };
  const overview = fleetClustersMessage(clusters, deps.chat.now(), LEADER_SILENT_AFTER_MS).blocks;
  // Slack allows 100 blocks in a view.
  const blocks = [...overview, ...(local?.blocks ?? [])].slice(0, 100);
  return { type: 'home' as const, blocks };
}

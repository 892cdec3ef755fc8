/** The App Home tab (views.publish on app_home_opened): the fleet at a glance and every open incident. */
import type { types } from '@slack/bolt';
import type { FleetSummary, IncidentSummary } from '../format.js';
import { slackDate } from '../format.js';
import { context, divider, fieldsSection, header, type KnownBlock, section } from './kit.js';
import { SlackLimits } from './limits.js';
import { breakerLine, coverageLine, fleetFields, incidentLine, sortIncidents } from './status.js';

/** Incidents listed one per block; the rest are counted, keeping the view under Slack's 100 blocks. */
const maxListedIncidents = 80;

export function appHomeView(
  summary: FleetSummary,
  openIncidents: readonly IncidentSummary[] = summary.openIncidents,
): types.HomeView {
  const incidents = sortIncidents(openIncidents);
  const coverage = coverageLine(summary.coverage);
  const blocks: KnownBlock[] = [
    header(`gpu-medic · ${summary.cluster}`),
    fieldsSection(fleetFields({ ...summary, openIncidents: [...openIncidents] })),
    context(breakerLine(summary)),
    ...(coverage ? [context(coverage)] : []),
    context(`Updated ${slackDate(summary.at)} · \`/gpu help\` for commands`),
    divider(),
    header(`Open incidents (${incidents.length})`),
  ];
  if (incidents.length === 0) {
    blocks.push(section('No open incidents. Every GPU node is healthy or being watched. 🎉'));
  } else {
    const room = Math.min(maxListedIncidents, SlackLimits.viewBlocks - blocks.length - 1);
    const listed = incidents.length > room ? room - 1 : incidents.length;
    for (const incident of incidents.slice(0, listed)) blocks.push(section(incidentLine(incident)));
    if (incidents.length > listed) {
      blocks.push(
        context(`… and ${incidents.length - listed} more open incidents; \`/gpu status\` in the channel.`),
      );
    }
  }
  return { type: 'home', blocks };
}

import { describe, expect, it } from 'vitest';
import { event as fixtureEvent } from '../../test/support/fixtures.js';
import { slackIncident, slackT0 } from '../../test/support/recording-chat-port.js';
import {
  ProgressBus,
  type ProgressEvent,
  type ProgressEventBase,
  type StepDetails,
} from '../domain/events.js';
import type { Incident } from '../domain/incident.js';
import { silentLogger } from '../log/logger.js';
import { createMetrics } from '../metrics/metrics.js';
import { countRemediationOutcomes, followUpEscalations, onIncidentDetected } from './reactions.js';

const event = (
  id: string,
  told: ProgressEvent['step'] | StepDetails,
  extra: Partial<ProgressEventBase> = {},
): ProgressEvent => fixtureEvent(told, { incidentId: id, ...extra });

describe('followUpEscalations', () => {
  it('follows up an escalation to replace, and nothing else; stops when unsubscribed', async () => {
    const bus = new ProgressBus();
    const followed: string[] = [];
    const services = {
      followUp: async (id: string) => {
        followed.push(id);
        return { ok: true as const, outcome: { kind: 'alert_only' as const, reason: 'replacing' } };
      },
    };
    const unsubscribe = followUpEscalations(bus, services, silentLogger());
    bus.publish(
      event('inc-1', { step: 'escalated', details: { reason: 'reboot did not cure it', to: 'replace' } }),
    );
    bus.publish(event('inc-2', { step: 'escalated', details: { reason: 'no rule', to: 'human' } }));
    bus.publish(event('inc-3', { step: 'failed', details: { reason: 'EC2 refused', stage: 'rebooting' } }));
    unsubscribe();
    bus.publish(
      event('inc-4', { step: 'escalated', details: { reason: 'reboot did not cure it', to: 'replace' } }),
    );
    expect(followed).toEqual(['inc-1']);
  });
});

describe('countRemediationOutcomes', () => {
  it('counts end steps by planned action, dry runs apart, and ignores alert-only incidents', async () => {
    const bus = new ProgressBus();
    const metrics = createMetrics();
    const incidents = new Map<string, Incident>([
      ['inc-r', slackIncident({ id: 'inc-r', plannedAction: 'reboot' })],
      ['inc-n', slackIncident({ id: 'inc-n', plannedAction: 'none' })],
    ]);
    countRemediationOutcomes(bus, (id) => incidents.get(id), metrics);
    bus.publish(event('inc-r', 'resolved'));
    bus.publish(event('inc-r', 'failed', { dryRun: true }));
    bus.publish(event('inc-r', 'cordoned'));
    bus.publish(event('inc-n', 'resolved'));
    const counted = (await metrics.remediations.get()).values
      .filter((v) => v.value > 0)
      .map((v) => `${v.labels.action}:${v.labels.outcome}=${v.value}`)
      .sort();
    expect(counted).toEqual(['reboot:dry_run=1', 'reboot:succeeded=1']);
  });
});

describe('onIncidentDetected', () => {
  it('announces the incident as `detected` by the monitor, then triages it', () => {
    const bus = new ProgressBus();
    const seen: ProgressEvent[] = [];
    bus.subscribe((e) => seen.push(e));
    const triaged: string[] = [];
    const onIncident = onIncidentDetected(
      bus,
      {
        triage: async (id: string) => {
          // Triage runs after the announcement: the alert is the thread's root.
          expect(seen.map((e) => e.step)).toEqual(['detected']);
          triaged.push(id);
          return undefined as never;
        },
      },
      silentLogger(),
      { now: () => slackT0 },
    );
    const incident = slackIncident({ id: 'inc-d', state: 'detected' });
    onIncident(incident);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      incidentId: 'inc-d',
      step: 'detected',
      state: 'detected',
      actor: 'monitor',
    });
    expect(seen[0]?.details).toMatchObject({ category: incident.category, severity: incident.severity });
    expect(triaged).toEqual(['inc-d']);
  });
});

import { describe, expect, it } from 'vitest';
import {
  RecordingChatPort,
  RecordingSink,
  slackEvent,
  slackIncident,
} from '../../test/support/recording-chat-port.js';
import { ProgressBus, type ProgressEvent } from '../domain/events.js';
import type { AlertView } from '../slack/blocks/alert.js';
import { connectChat } from './chat.js';

/** Every sink call in one list, in the order they happened. */
class OrderedSink extends RecordingSink {
  readonly order: string[] = [];
  override postAlert(view: AlertView): void {
    this.order.push(`alert:${view.incident.id}`);
    super.postAlert(view);
  }
  override postProgress(event: ProgressEvent): void {
    this.order.push(`reply:${event.incidentId}:${event.step}`);
    super.postProgress(event);
  }
  override updateRoot(incidentId: string, view: AlertView): void {
    this.order.push(`update:${incidentId}:${view.incident.state}`);
    super.updateRoot(incidentId, view);
  }
}

/** A port whose store reads are slow, as a real one can be. */
class SlowPort extends RecordingChatPort {
  override async alertView(incidentId: string): Promise<AlertView | undefined> {
    await new Promise((resolve) => setTimeout(resolve, 20));
    return super.alertView(incidentId);
  }
}

describe('connectChat', () => {
  it('posts the alert before a step published right after `detected`, even when the alert is slow to build', async () => {
    const bus = new ProgressBus();
    const port = new SlowPort();
    const incident = slackIncident({ state: 'detected', mode: 'off', plannedAction: 'none' });
    port.incidents.set(incident.id, { incident });
    const sink = new OrderedSink();
    const chat = connectChat({ bus }, sink, port);

    bus.publish({ ...slackEvent(incident.id, 'detected', 0), state: 'detected' });
    bus.publish({ ...slackEvent(incident.id, 'policy', 1), state: 'detected' });
    await chat.whenIdle();
    expect(sink.order).toEqual([`alert:${incident.id}`, `reply:${incident.id}:policy`]);
    chat.disconnect();
  });

  it('keeps publish order within an incident and updates the root once per state change', async () => {
    const bus = new ProgressBus();
    const port = new SlowPort();
    const incident = slackIncident({ state: 'detected' });
    port.incidents.set(incident.id, { incident });
    const sink = new OrderedSink();
    const chat = connectChat({ bus }, sink, port);

    bus.publish({ ...slackEvent(incident.id, 'detected', 0), state: 'detected' });
    bus.publish({ ...slackEvent(incident.id, 'cordoned', 1), state: 'cordoned' });
    bus.publish({ ...slackEvent(incident.id, 'drain_started', 2), state: 'draining' });
    bus.publish({ ...slackEvent(incident.id, 'pod_evicted', 3), state: 'draining' });
    await chat.whenIdle();
    expect(sink.order.filter((o) => !o.startsWith('update'))).toEqual([
      `alert:${incident.id}`,
      `reply:${incident.id}:cordoned`,
      `reply:${incident.id}:drain_started`,
      `reply:${incident.id}:pod_evicted`,
    ]);
    // cordoned and draining changed the state; the eviction did not.
    expect(sink.updates).toHaveLength(2);
  });

  it('re-renders the root when the incident is left to EKS node auto repair and when EKS is done (no state change)', async () => {
    const bus = new ProgressBus();
    const port = new SlowPort();
    const incident = slackIncident({ state: 'detected' });
    port.incidents.set(incident.id, { incident });
    const sink = new OrderedSink();
    const chat = connectChat({ bus }, sink, port);

    bus.publish({ ...slackEvent(incident.id, 'detected', 0), state: 'detected' });
    bus.publish({ ...slackEvent(incident.id, 'auto_repair_deferred', 1), state: 'detected' });
    await chat.whenIdle();
    expect(sink.order).toEqual([
      `alert:${incident.id}`,
      `reply:${incident.id}:auto_repair_deferred`,
      `update:${incident.id}:detected`,
    ]);
  });

  it('re-renders the alert when the incident is detected again (refined by the model), never posts a second one', async () => {
    const bus = new ProgressBus();
    const port = new RecordingChatPort();
    const incident = slackIncident({ state: 'detected' });
    port.incidents.set(incident.id, { incident });
    const sink = new OrderedSink();
    const chat = connectChat({ bus }, sink, port);

    bus.publish({ ...slackEvent(incident.id, 'detected', 0), state: 'detected' });
    bus.publish({ ...slackEvent(incident.id, 'detected', 1), state: 'detected' });
    await chat.whenIdle();
    expect(sink.order).toEqual([`alert:${incident.id}`, `update:${incident.id}:detected`]);
  });

  it('stops posting after disconnect', async () => {
    const bus = new ProgressBus();
    const port = new RecordingChatPort();
    const incident = slackIncident();
    port.incidents.set(incident.id, { incident });
    const sink = new OrderedSink();
    const chat = connectChat({ bus }, sink, port);
    chat.disconnect();
    bus.publish(slackEvent(incident.id, 'detected', 0));
    await chat.whenIdle();
    expect(sink.order).toEqual([]);
  });
});

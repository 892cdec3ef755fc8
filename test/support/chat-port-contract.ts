/**
 * The ChatPort contract: the checks the real port (the services and read models of a runtime against the
 * simulator) and the recording fake the Slack listener tests use both pass, so what a listener test proves
 * with the fake holds against the core.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ChatPort } from '../../src/slack/chat-port.js';

export interface ChatPortFixture {
  port: ChatPort;
  /** A GPU node the port knows. */
  node: string;
  /** An incident on `node` awaiting approval. */
  pendingIncidentId: string;
  close(): Promise<void>;
}

const admin = 'slack:UADMIN0001';

export function describeChatPortContract(name: string, make: () => Promise<ChatPortFixture>): void {
  describe(`ChatPort contract: ${name}`, () => {
    let f: ChatPortFixture;
    beforeEach(async () => {
      f = await make();
    });
    afterEach(async () => {
      await f?.close();
    });

    it('the first approval of a pending incident claims it; the next one is told it is busy', async () => {
      const first = await f.port.approve(f.pendingIncidentId, admin);
      expect(first).toMatchObject({ ok: true, incidentId: f.pendingIncidentId });
      const second = await f.port.approve(f.pendingIncidentId, admin);
      expect(second).toMatchObject({ ok: false, code: 'busy' });
    });

    it('an unknown incident is not found, and has no alert', async () => {
      expect(await f.port.approve('inc-no-such', admin)).toMatchObject({ ok: false, code: 'not_found' });
      expect(await f.port.alertView('inc-no-such')).toBeUndefined();
    });

    it('the pending incident is open, and its alert view shows it', async () => {
      const open = await f.port.openIncidents();
      expect(open.map((i) => i.id)).toContain(f.pendingIncidentId);
      const view = await f.port.alertView(f.pendingIncidentId);
      expect(view?.incident).toMatchObject({
        id: f.pendingIncidentId,
        node: f.node,
        state: 'awaiting_approval',
      });
    });

    it('exclude lists the node with its reason, author and end; unexclude takes it off, once', async () => {
      const until = f.port.now() + 3_600_000;
      expect(await f.port.exclude(f.node, { reason: 'maintenance', until }, admin)).toMatchObject({
        ok: true,
      });
      expect(await f.port.exclusions()).toEqual([
        expect.objectContaining({ node: f.node, reason: 'maintenance', createdBy: admin, expiresAt: until }),
      ]);
      expect(await f.port.unexclude(f.node, admin)).toMatchObject({ ok: true });
      expect(await f.port.exclusions()).toEqual([]);
      expect(await f.port.unexclude(f.node, admin)).toMatchObject({ ok: false, code: 'not_found' });
    });

    it('a node the cluster does not have: no detail, no history, not found to exclude', async () => {
      const ghost = 'ip-10-9-9-9.ec2.internal';
      expect(await f.port.nodeDetail(ghost)).toBeUndefined();
      // Asked before anything is tried on it: a refused exclusion is audited, and then the node has a history.
      expect(await f.port.history(ghost)).toBeUndefined();
      const refused = await f.port.exclude(ghost, { reason: 'x' }, admin);
      expect(refused).toMatchObject({ ok: false, code: 'not_found' });
    });

    it('DCGM diagnostics of a known node answer with a verdict and a row per test and GPU; an unknown node is not found', async () => {
      const r = await f.port.runDiagnostics(f.node, 1, admin);
      expect(r).toMatchObject({ ok: true, node: f.node, level: 1, verdict: 'pass' });
      if (!r.ok) throw new Error(r.message);
      expect(r.results.length).toBeGreaterThan(0);
      expect(r.results.every((x) => x.status === 'pass' && Number.isInteger(x.gpu))).toBe(true);
      expect(r.message).toContain(f.node);
      const ghost = await f.port.runDiagnostics('ip-10-9-9-9.ec2.internal', 1, admin);
      expect(ghost).toMatchObject({ ok: false, code: 'not_found' });
    });

    it('a known node has a detail and a history', async () => {
      expect((await f.port.nodeDetail(f.node))?.node).toBe(f.node);
      expect(await f.port.history(f.node)).toEqual(expect.any(Array));
      expect(f.port.now()).toEqual(expect.any(Number));
    });
  });
}

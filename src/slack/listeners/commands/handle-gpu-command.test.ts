import { describe, expect, it } from 'vitest';
import { RecordingChatPort } from '../../../../test/support/recording-chat-port.js';
import { createAuthorizer } from '../../authz.js';
import { handleConfirmClick, handleGpuCommand } from './handle-gpu-command.js';

const admin = 'UADMIN0001';
const viewer = 'UVIEWER001';
const node = 'ip-10-0-1-2.ec2.internal';

function setup() {
  const chat = new RecordingChatPort();
  const authz = createAuthorizer({ adminUsers: [admin] });
  return { chat, deps: { chat, authz } };
}

describe('handleGpuCommand', () => {
  it.each([
    ['status', 'fleetSummary', 'GPU fleet sim-cluster'],
    [`status ${node}`, 'nodeDetail', node],
    ['exclusions', 'exclusions', 'No nodes are excluded'],
    [`history ${node}`, 'history', `No history for ${node}`],
    ['help', undefined, 'gpu-medic commands'],
    ['', undefined, 'gpu-medic commands'],
  ])('answers read-only `/gpu %s` for anyone', async (text, method, expected) => {
    const { chat, deps } = setup();
    const reply = await handleGpuCommand(text, viewer, deps);
    expect(reply.message.text).toContain(expected);
    if (method) expect(chat.callsOf(method)).toHaveLength(1);
    expect(chat.audits).toHaveLength(0);
  });

  it('excludes with the parsed duration and reason for an admin', async () => {
    const { chat, deps } = setup();
    const reply = await handleGpuCommand(`exclude ${node} 2h maintenance window`, admin, deps);
    expect(chat.callsOf('exclude')).toEqual([
      {
        method: 'exclude',
        args: [node, { until: chat.clock + 2 * 3_600_000, reason: 'maintenance window' }, `slack:${admin}`],
      },
    ]);
    expect(reply.message.text).toContain('✅');
  });

  it.each([
    [`exclude ${node} 2h maintenance`, 'command.exclude', node],
    [`unexclude ${node}`, 'command.unexclude', node],
    ['pause', 'command.pause', undefined],
    ['resume', 'command.resume', undefined],
    [`reboot ${node}`, 'command.reboot', node],
    [`replace ${node}`, 'command.replace', node],
  ])('denies `/gpu %s` to a non-admin, audited, with no service call', async (text, action, auditNode) => {
    const { chat, deps } = setup();
    const reply = await handleGpuCommand(text, viewer, deps);
    expect(reply.message.text).toContain('not allowed');
    expect(reply.confirm).toBeUndefined();
    expect(chat.calls.filter((c) => c.method !== 'audit')).toEqual([]);
    expect(chat.audits).toHaveLength(1);
    expect(chat.audits[0]).toMatchObject({ actor: `slack:${viewer}`, action, result: 'denied' });
    expect(chat.audits[0]?.node).toBe(auditNode);
  });

  it('asks for confirmation before a reboot, and runs it on confirm', async () => {
    const { chat, deps } = setup();
    const reply = await handleGpuCommand(`reboot ${node} flaky gpu`, admin, deps);
    expect(reply.confirm).toEqual({ kind: 'reboot', node, reason: 'flaky gpu' });
    expect(chat.callsOf('requestManual')).toHaveLength(0);
    const actions = reply.message.blocks.find((b) => b.type === 'actions');
    const confirm = actions && 'elements' in actions ? actions.elements[0] : undefined;
    const value = confirm && 'value' in confirm ? confirm.value : undefined;
    const done = await handleConfirmClick('gpu_cmd_confirm', value, admin, deps);
    expect(done.text).toContain('Started reboot');
    expect(chat.callsOf('requestManual')[0]?.args).toEqual(['reboot', node, `slack:${admin}`, 'flaky gpu']);
  });

  it('/gpu reset <node> <gpu>: confirmed, then requestManual(reset) with the GPU as an option', async () => {
    const { chat, deps } = setup();
    const reply = await handleGpuCommand(`reset ${node} 3 xid 119`, admin, deps);
    expect(reply.confirm).toEqual({ kind: 'reset', node, gpu: 3, reason: 'xid 119' });
    expect(reply.message.text).toContain(`Reset GPU 3 of ${node}?`);
    expect(chat.callsOf('requestManual')).toHaveLength(0);
    const actions = reply.message.blocks.find((b) => b.type === 'actions');
    const confirm = actions && 'elements' in actions ? actions.elements[0] : undefined;
    const value = confirm && 'value' in confirm ? confirm.value : undefined;
    await handleConfirmClick('gpu_cmd_confirm', value, admin, deps);
    expect(chat.callsOf('requestManual')[0]?.args).toEqual([
      'reset',
      node,
      `slack:${admin}`,
      'xid 119',
      { gpu: 3 },
    ]);
    // A viewer's click is refused like any destructive command.
    await handleConfirmClick('gpu_cmd_confirm', value, viewer, deps);
    expect(chat.callsOf('requestManual')).toHaveLength(1);
  });

  it('re-checks authorization on the confirm click', async () => {
    const { chat, deps } = setup();
    const value = JSON.stringify({ k: 'replace', n: node });
    const reply = await handleConfirmClick('gpu_cmd_confirm', value, viewer, deps);
    expect(reply.text).toContain('not allowed');
    expect(chat.callsOf('requestManual')).toHaveLength(0);
    expect(chat.audits[0]).toMatchObject({ action: 'command.replace', result: 'denied' });
  });

  it('cancel does nothing; a forged confirmation value is refused', async () => {
    const { chat, deps } = setup();
    const value = JSON.stringify({ k: 'replace', n: node });
    expect((await handleConfirmClick('gpu_cmd_cancel', value, admin, deps)).text).toContain('Cancelled');
    expect((await handleConfirmClick('gpu_cmd_confirm', '{"k":"rm -rf"}', admin, deps)).text).toContain(
      'not valid',
    );
    expect(chat.calls).toHaveLength(0);
  });

  it.each([
    ['frobnicate', 'Unknown subcommand'],
    ['exclude', 'needs a node name'],
    ['exclude Bad_Node', 'not a valid node name'],
    [`exclude ${node} 400d`, '30d maximum'],
    ['status no-such-node', 'No node named'],
    ['history no-such-node', 'No node named'],
  ])('answers `/gpu %s` with a helpful error', async (text, expected) => {
    const { deps } = setup();
    const reply = await handleGpuCommand(text, admin, deps);
    expect(reply.message.text).toContain(expected);
  });

  it('answers a generic message, never a stack trace, when the core throws', async () => {
    const { chat, deps } = setup();
    chat.failWith = new Error('SQLITE_BUSY: database is locked\n    at Statement.run');
    const reply = await handleGpuCommand('status', viewer, deps);
    expect(reply.message.text).toContain('Something went wrong');
    expect(JSON.stringify(reply.message)).not.toContain('SQLITE_BUSY');
  });
});

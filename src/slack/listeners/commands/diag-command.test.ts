import { describe, expect, it } from 'vitest';
import { RecordingChatPort } from '../../../../test/support/recording-chat-port.js';
import { createAuthorizer } from '../../authz.js';
import { encodeButtonValue } from '../../blocks/alert.js';
import { parseGpuCommand } from '../../commands/parse.js';
import { handleAlertClick } from '../actions/alert-buttons.js';
import { handleGpuCommand } from './handle-gpu-command.js';

const admin = 'UADMIN0001';
const viewer = 'UVIEWER001';
const node = 'ip-10-0-1-2.ec2.internal';

function setup() {
  const chat = new RecordingChatPort();
  const authz = createAuthorizer({ adminUsers: [admin] });
  return { chat, deps: { chat, authz } };
}

describe('/gpu diag', () => {
  it('parses a node and a level (1 unless told); refuses another level', () => {
    expect(parseGpuCommand(`diag ${node}`)).toEqual({ kind: 'diag', node, level: 1 });
    expect(parseGpuCommand(`diag ${node} 3`)).toEqual({ kind: 'diag', node, level: 3 });
    expect(parseGpuCommand(`diag ${node} 4`)).toMatchObject({
      error: expect.stringContaining('level 1, 2 or 3'),
    });
    expect(parseGpuCommand('diag')).toMatchObject({ error: expect.stringContaining('needs a node name') });
  });

  it('runs the diagnostic for an admin and answers with the table: test, GPU, result, DCGM’s text', async () => {
    const { chat, deps } = setup();
    chat.diagResults = [
      { test: 'memory', gpu: 0, status: 'pass' },
      { test: 'memory', gpu: 1, status: 'fail', info: 'Found 4 faulty memory elements on GPU 1' },
    ];
    const reply = await handleGpuCommand(`diag ${node} 2`, admin, deps);
    expect(chat.callsOf('runDiagnostics')).toEqual([
      { method: 'runDiagnostics', args: [node, 2, `slack:${admin}`] },
    ]);
    expect(reply.message.text).toContain(`❌ DCGM diagnostics level 2 failed on ${node}.`);
    expect(reply.message.text).toContain('memory  1    FAIL    Found 4 faulty memory elements on GPU 1');
    expect(reply.message.text).toContain('memory  0    pass');
    expect(reply.confirm).toBeUndefined();
  });

  it('is refused to a non-admin (it loads the GPUs for minutes), and the refusal is audited', async () => {
    const { chat, deps } = setup();
    const reply = await handleGpuCommand(`diag ${node}`, viewer, deps);
    expect(reply.message.text).toContain('not allowed');
    expect(chat.callsOf('runDiagnostics')).toEqual([]);
    expect(chat.audits).toMatchObject([{ action: 'command.diag', node, result: 'denied' }]);
  });

  it('the alert’s Run diagnostics button runs level 1 and answers with the table, leaving the alert as it is', async () => {
    const { chat, deps } = setup();
    const reply = await handleAlertClick('diagnose', encodeButtonValue('inc-0001', node), admin, deps);
    expect(chat.callsOf('runDiagnostics')).toEqual([
      { method: 'runDiagnostics', args: [node, 1, `slack:${admin}`] },
    ]);
    expect(reply.message.text).toContain(`✅ DCGM diagnostics level 1 passed on ${node}.`);
    expect(reply.message.text).toContain('software  0-3  pass');
    expect(reply.update).toBeUndefined();
    expect(chat.callsOf('approve')).toEqual([]);
  });
});

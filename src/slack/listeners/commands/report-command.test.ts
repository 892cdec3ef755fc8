import { describe, expect, it } from 'vitest';
import { RecordingChatPort } from '../../../../test/support/recording-chat-port.js';
import { createAuthorizer } from '../../authz.js';
import { parseGpuCommand } from '../../commands/parse.js';
import { handleGpuCommand } from './handle-gpu-command.js';

const viewer = 'UVIEWER001';

describe('/gpu report', () => {
  it.each([
    ['report', 30],
    ['report 7', 7],
    ['report 90d', 90],
    ['REPORT 365', 365],
  ])('parses `%s` as the last %i days', (text, days) => {
    expect(parseGpuCommand(text)).toEqual({ kind: 'report', days });
  });

  it.each(['report 0', 'report 366', 'report soon', 'report 7 8'])('refuses `%s` with the usage', (text) => {
    expect(parseGpuCommand(text)).toMatchObject({
      usage: '/gpu report [cluster:<name>] [days, default 30, at most 365]',
    });
  });

  it('is open to everyone: a CSV file to post, and a summary for when files cannot be posted', async () => {
    const chat = new RecordingChatPort();
    chat.report = {
      repairs: 2,
      csv: 'ended_at,incident\r\nx,inc-1\r\n',
      filename: 'gpu-medic-repairs-2026-12-03-7d.csv',
      summary: '2 GPU repairs in the last 7 days',
    };
    const reply = await handleGpuCommand('report 7', viewer, {
      chat,
      authz: createAuthorizer({ adminUsers: ['UADMIN0001'] }),
    });
    expect(chat.callsOf('repairReport')).toEqual([{ method: 'repairReport', args: [7] }]);
    expect(reply.file).toMatchObject({
      filename: 'gpu-medic-repairs-2026-12-03-7d.csv',
      content: 'ended_at,incident\r\nx,inc-1\r\n',
      fallback: '2 GPU repairs in the last 7 days',
    });
    expect(reply.message.text).toContain('2 repairs');
  });

  it('with no repairs, says so and posts no file', async () => {
    const chat = new RecordingChatPort();
    const reply = await handleGpuCommand('report', viewer, {
      chat,
      authz: createAuthorizer({ adminUsers: ['UADMIN0001'] }),
    });
    expect(reply.file).toBeUndefined();
    expect(reply.message.text).toContain('No GPU repairs in the last 30 days');
  });
});

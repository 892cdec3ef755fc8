import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { RecordingChatPort, slackEvent, slackIncident } from '../../test/support/recording-chat-port.js';
import { createAuthorizer } from './authz.js';
import { ConsoleChat, plainText } from './console-chat.js';

function setup(options: { admin?: boolean } = {}) {
  const chat = new RecordingChatPort();
  let out = '';
  const console = new ConsoleChat({
    chat,
    write: (t) => {
      out += t;
    },
    ...(options.admin === false ? { authz: createAuthorizer({ adminUsers: [] }) } : {}),
  });
  return { chat, console, output: () => out };
}

describe('ConsoleChat', () => {
  it('renders an alert with its fields and buttons, and indents its thread', () => {
    const { console, output } = setup();
    const view = { incident: slackIncident(), cluster: 'sim-cluster' };
    console.postAlert(view);
    console.postAlert(view);
    console.postProgress(slackEvent('inc-0001', 'cordoned', 1));
    console.postProgress(slackEvent('inc-0001', 'pod_evicted', 2));
    console.updateRoot('inc-0001', { ...view, actedBy: { action: 'replace', userId: 'UADMIN0001' } });
    const text = output();
    expect(text).toContain('━━ 🔴 critical · ip-10-0-1-2.ec2.internal · p4d.24xlarge ━━');
    expect(text).toContain('  Node: `ip-10-0-1-2.ec2.internal`');
    expect(text).toContain('[Replace] [Reboot] [Cordon] [Run diagnostics] [Exclude] [Dismiss]');
    expect(text.match(/━━ 🔴/g)).toHaveLength(1);
    const replies = text.split('\n').filter((l) => l.startsWith('    ↳ '));
    expect(replies).toHaveLength(2);
    expect(replies.every((l) => l.startsWith('    ↳ [ip-10-0-1-2] '))).toBe(true);
    expect(text).toContain('Replace approved by @UADMIN0001');
    expect(text).not.toContain('<!date');
  });

  it('tags each reply with its node, so two interleaved incidents stay apart', () => {
    const { console, output } = setup();
    console.postProgress({ ...slackEvent('inc-0001', 'cordoned', 1), node: 'ip-10-0-1-2.ec2.internal' });
    console.postProgress({ ...slackEvent('inc-0002', 'cordoned', 2), node: 'ip-10-0-9-9.ec2.internal' });
    console.postProgress({ ...slackEvent('inc-0003', 'cordoned', 3), node: '' });
    const replies = output()
      .split('\n')
      .filter((l) => l.startsWith('    ↳ '));
    expect(replies).toEqual([
      expect.stringMatching(/^ {4}↳ \[ip-10-0-1-2\] ✅ Cordoned ip-10-0-1-2\.ec2\.internal/),
      expect.stringMatching(/^ {4}↳ \[ip-10-0-9-9\] ✅ Cordoned ip-10-0-9-9\.ec2\.internal/),
      expect.stringMatching(/^ {4}↳ \[inc-0003\] /),
    ]);
  });

  it('answers a /gpu status line with the same handler as Slack', async () => {
    const { chat, console, output } = setup();
    const printed = await console.handleLine('/gpu status');
    expect(printed).toContain('GPU fleet · sim-cluster');
    expect(chat.callsOf('fleetSummary')).toHaveLength(1);
    expect(output()).toContain('  │ ━━ GPU fleet · sim-cluster ━━');
  });

  it('asks before a reboot and runs it on yes; reads lines from a stream', async () => {
    const { chat, console, output } = setup();
    await console.attach(Readable.from(['/gpu reboot ip-10-0-1-2.ec2.internal\n', 'yes\n', 'hello\n']));
    expect(output()).toContain('[Reboot] [Cancel]');
    expect(chat.callsOf('requestManual')[0]?.args.slice(0, 2)).toEqual([
      'reboot',
      'ip-10-0-1-2.ec2.internal',
    ]);
    expect(output()).toContain('Type /gpu help');
  });

  it('still enforces authorization when an authorizer is given', async () => {
    const { chat, console } = setup({ admin: false });
    expect(await console.handleLine('/gpu pause')).toContain('not allowed');
    expect(chat.callsOf('pause')).toHaveLength(0);
  });

  it.each([
    ['<@U123ABC> did it', '@U123ABC did it'],
    ['<!date^1700000000^{date_short_pretty}|2023-11-14 22:13 UTC>', '2023-11-14 22:13 UTC'],
    ['a &lt;b&gt; &amp; c', 'a <b> & c'],
    ['<https://x.y/z|docs>', 'docs'],
  ])('plainText(%s)', (input, expected) => {
    expect(plainText(input)).toBe(expected);
  });
});

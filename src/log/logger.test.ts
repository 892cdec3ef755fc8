import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { componentLogger, createLogger, scrubSecrets } from './logger.js';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  return { lines, destination, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const token = 'xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx';

describe('createLogger', () => {
  it('writes JSON with app, level label and component', () => {
    const out = capture();
    const root = createLogger({ level: 'info', destination: out.destination });
    componentLogger(root, 'monitor').info({ node: 'ip-10-0-0-1' }, 'scan finished');
    root.debug('not shown at info');
    const [rec, ...rest] = out.records();
    expect(rest).toEqual([]);
    expect(rec).toMatchObject({
      app: 'gpu-medic',
      component: 'monitor',
      level: 'info',
      node: 'ip-10-0-0-1',
      msg: 'scan finished',
    });
  });

  it.each([
    ['a top-level token', { token }],
    ['a nested bot token', { config: { slack: { botToken: token } } }],
    ['an authorization header', { req: { headers: { authorization: `Bearer ${token}` } } }],
    ['a signing secret', { slack: { signingSecret: token } }],
    ['a webhook secret', { notify: { webhookSecret: token } }],
    ['a password', { db: { password: token } }],
    ['a generic secret', { sink: { secret: token } }],
    ['a Slack signature header', { headers: { 'x-slack-signature': token } }],
  ])('never writes %s', (_name, obj) => {
    const out = capture();
    createLogger({ destination: out.destination }).info(obj, 'request');
    expect(out.lines).toHaveLength(1);
    expect(out.lines[0]).not.toContain('AbCdEfGhIjKlMnOpQrStUvWx');
    expect(out.lines[0]).toContain('[redacted]');
  });

  it('scrubs a token quoted in a message or an error', () => {
    const out = capture();
    const log = createLogger({ destination: out.destination });
    log.warn(`auth failed for ${token}`);
    log.error({ err: new Error(`invalid_auth: ${token}`) }, 'slack call failed');
    expect(out.lines).toHaveLength(2);
    for (const l of out.lines) expect(l).not.toContain('AbCdEfGhIjKlMnOpQrStUvWx');
    expect(out.records()[0]?.msg).toBe('auth failed for xoxb-[redacted]');
  });

  it('leaves ordinary text alone', () => {
    expect(scrubSecrets('node ip-10-0-0-1 xid 79')).toBe('node ip-10-0-0-1 xid 79');
  });
});

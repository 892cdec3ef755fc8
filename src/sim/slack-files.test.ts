import { LogLevel, WebClient } from '@slack/web-api';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { postReplyFile } from '../slack/listeners/commands/report-file.js';
import { SIM_SLACK_BOT_TOKEN, type SimSlack, startSimSlack } from './slack-server.js';

let slack: SimSlack;
beforeAll(async () => {
  slack = await startSimSlack();
});
afterAll(async () => {
  await slack.close();
});
afterEach(() => {
  slack.log.assertNoUnexpected();
  slack.faults.clear();
});

const client = () =>
  new WebClient(SIM_SLACK_BOT_TOKEN, {
    slackApiUrl: slack.url,
    retryConfig: { retries: 0 },
    logLevel: LogLevel.ERROR,
  });

const csv = 'ended_at,incident,gpu_uuid\r\n2026-12-03T09:30:00.000Z,inc-1,"GPU-3333"\r\n';

describe('Slack external file upload (files.getUploadURLExternal → upload → files.completeUploadExternal)', () => {
  it('filesUploadV2 posts the bytes and shares the file in the channel, with its comment', async () => {
    const out = await client().filesUploadV2({
      channel_id: 'C0GPUOPS01',
      filename: 'repairs.csv',
      title: 'GPU repairs',
      content: csv,
      initial_comment: 'RMA evidence',
    });
    expect(out.ok).toBe(true);
    const methods = slack.log.requests.map((r) => r.operation ?? r.path.split('/').slice(0, 3).join('/'));
    expect(methods).toEqual(['files.getUploadURLExternal', '/upload/v1', 'files.completeUploadExternal']);
    const file = slack.files.at(-1);
    expect(file).toMatchObject({
      filename: 'repairs.csv',
      title: 'GPU repairs',
      content: csv,
      length: Buffer.byteLength(csv),
      channel: 'C0GPUOPS01',
      initialComment: 'RMA evidence',
      completed: true,
    });
  });

  it('refuses to complete a file whose bytes never arrived, and an unknown file', async () => {
    const c = client();
    const url = await c.files.getUploadURLExternal({ filename: 'x.csv', length: 3 });
    const early = await c.files
      .completeUploadExternal({ files: [{ id: String(url.file_id) }], channel_id: 'C0GPUOPS01' })
      .catch((e: unknown) => e);
    expect(early).toMatchObject({ data: { error: 'file_upload_not_complete' } });
    const unknown = await c.files
      .completeUploadExternal({ files: [{ id: 'F9999999999' }] })
      .catch((e: unknown) => e);
    expect(unknown).toMatchObject({ data: { error: 'file_not_found' } });
  });

  it('without files:write, /gpu report answers with the summary and says why', async () => {
    slack.faults.set({ error: 'missing_scope', methods: ['files.getUploadURLExternal'] });
    const message = await postReplyFile(client(), 'C0GPUOPS01', {
      message: { text: 'posted', blocks: [] },
      file: {
        filename: 'r.csv',
        title: 't',
        content: csv,
        comment: 'c',
        fallback: '1 GPU repair in the last 30 days',
      },
    });
    expect(message.text).toContain('1 GPU repair in the last 30 days');
    expect(message.text).toContain('files:write');
    expect(slack.files.filter((f) => f.filename === 'r.csv')).toEqual([]);
  });
});

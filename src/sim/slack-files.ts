/**
 * Slack's external file upload, as the Slack fake serves it (what `filesUploadV2` does):
 *   1. `files.getUploadURLExternal` (filename, length) → `{ ok, upload_url, file_id }`;
 *   2. POST the bytes to `upload_url` (raw, or multipart/form-data as @slack/web-api sends them) → 200 `OK - <n>`;
 *   3. `files.completeUploadExternal` (files = JSON `[{ id, title }]`, channel_id, initial_comment, thread_ts)
 *      → `{ ok, files: [...] }`, and the file is shared in the channel.
 * A file completed before its bytes arrived, or an unknown id, is refused as Slack refuses it.
 */

export interface SimSlackFile {
  id: string;
  filename: string;
  /** The length announced in step 1. */
  length: number;
  title?: string;
  /** The uploaded bytes, as text. */
  content?: string;
  channel?: string;
  threadTs?: string;
  initialComment?: string;
  completed: boolean;
}

type Result = Record<string, unknown> & { ok: boolean };
type Args = Record<string, unknown>;

const UPLOAD_PATH = '/upload/v1/';

function str(args: Args, key: string): string | undefined {
  const v = args[key];
  return typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined;
}

/** The first part's body of a multipart/form-data request; undefined when it is not multipart. */
function multipartContent(contentType: string, body: string): string | undefined {
  const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
  const boundary = m?.[1] ?? m?.[2];
  if (!contentType.toLowerCase().startsWith('multipart/form-data') || !boundary) return undefined;
  const part = body.split(`--${boundary}`)[1];
  if (part === undefined) return undefined;
  const start = part.indexOf('\r\n\r\n');
  if (start < 0) return undefined;
  return part.slice(start + 4).replace(/\r\n$/, '');
}

export class SlackFiles {
  readonly files: SimSlackFile[] = [];
  private seq = 0;

  constructor(
    private readonly origin: () => string,
    private readonly channelId: (channel: string) => string,
  ) {}

  /** Web API methods, in the shape of the fake's method table. */
  readonly methods: Record<string, (args: Args) => Result> = {
    'files.getUploadURLExternal': (args) => {
      const filename = str(args, 'filename');
      const length = Number(str(args, 'length'));
      if (!filename || !Number.isInteger(length) || length < 1)
        return { ok: false, error: 'invalid_arguments' };
      const id = `F${String(++this.seq).padStart(10, '0')}`;
      this.files.push({ id, filename, length, completed: false });
      return { ok: true, upload_url: `${this.origin()}${UPLOAD_PATH}${id}`, file_id: id };
    },

    'files.completeUploadExternal': (args) => {
      let list = args.files;
      if (typeof list === 'string') {
        try {
          list = JSON.parse(list);
        } catch {
          return { ok: false, error: 'invalid_arguments' };
        }
      }
      if (!Array.isArray(list) || list.length === 0) return { ok: false, error: 'invalid_arguments' };
      const wanted = list.map((f) => (typeof f === 'object' && f !== null ? (f as Args) : {}));
      const found = wanted.map((f) => this.files.find((x) => x.id === f.id));
      if (found.some((f) => f === undefined || f.completed)) return { ok: false, error: 'file_not_found' };
      if (found.some((f) => f?.content === undefined))
        return { ok: false, error: 'file_upload_not_complete' };
      const channel = str(args, 'channel_id');
      const threadTs = str(args, 'thread_ts');
      const comment = str(args, 'initial_comment');
      const shared = found.map((f, i) => {
        const file = f as SimSlackFile;
        file.completed = true;
        const title = str(wanted[i] ?? {}, 'title') ?? file.filename;
        file.title = title;
        if (channel) file.channel = this.channelId(channel);
        if (threadTs) file.threadTs = threadTs;
        if (comment) file.initialComment = comment;
        return { id: file.id, name: file.filename, title, size: file.length, mimetype: 'text/csv' };
      });
      return { ok: true, files: shared };
    },
  };

  /** The upload URL's POST; undefined for any other path (the caller serves it). */
  upload(path: string, contentType: string, body: string): { status: number; text: string } | undefined {
    if (!path.startsWith(UPLOAD_PATH)) return undefined;
    const file = this.files.find((f) => f.id === path.slice(UPLOAD_PATH.length) && !f.completed);
    if (!file) return { status: 404, text: 'file not found' };
    file.content = multipartContent(contentType, body) ?? body;
    return { status: 200, text: `OK - ${Buffer.byteLength(file.content)}` };
  }
}

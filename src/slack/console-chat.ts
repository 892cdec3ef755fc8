/**
 * The demo's chat without Slack: alerts printed as readable text (header, fields, buttons as
 * `[Replace] [Reboot] …`), thread replies indented under their alert, and `/gpu …` lines read from stdin
 * answered by the same command handling as the Bolt listener.
 */
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { ProgressEvent } from '../domain/events.js';
import type { Authorizer } from './authz.js';
import { type AlertView, alertMessage, type SlackMessage } from './blocks/alert.js';
import { threadReply } from './blocks/thread.js';
import type { ChatPort, ChatSink } from './chat-port.js';
import {
  type CommandReply,
  handleGpuCommand,
  type NodeActionCommand,
  runConfirmedCommand,
} from './listeners/commands/handle-gpu-command.js';

/** Slack mrkdwn → terminal text: mentions, dates and links to their readable part, entities decoded. */
export function plainText(mrkdwn: string): string {
  return mrkdwn
    .replace(/<!date\^\d+\^[^|>]*\|([^>]*)>/g, '$1')
    .replace(/<@([UW][A-Z0-9]+)>/g, '@$1')
    .replace(/<!(here|channel|everyone)>/g, '@$1')
    .replace(/<([^|>]+)\|([^>]+)>/g, '$2')
    .replace(/<(https?:[^>]+)>/g, '$1')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function textOf(v: unknown): string {
  if (typeof v === 'object' && v !== null && typeof (v as { text?: unknown }).text === 'string') {
    return plainText((v as { text: string }).text);
  }
  return '';
}

function indent(text: string, prefix: string): string {
  return text
    .split('\n')
    .map((l) => prefix + l)
    .join('\n');
}

/** A Block Kit message as lines of text; unknown blocks fall back to the message text. */
export function renderBlocks(message: SlackMessage): string {
  const out: string[] = [];
  for (const raw of message.blocks as unknown[]) {
    if (typeof raw !== 'object' || raw === null) continue;
    const b = raw as { type?: unknown; text?: unknown; fields?: unknown; elements?: unknown };
    switch (b.type) {
      case 'header':
        out.push(`━━ ${textOf(b.text)} ━━`);
        break;
      case 'section': {
        const t = textOf(b.text);
        if (t) out.push(t);
        if (Array.isArray(b.fields)) {
          for (const f of b.fields) {
            const [label = '', ...rest] = textOf(f).split('\n');
            out.push(`  ${label.replace(/^\*(.*)\*$/, '$1')}: ${rest.join(' ')}`);
          }
        }
        break;
      }
      case 'context':
        if (Array.isArray(b.elements)) out.push(...b.elements.map((e) => `  · ${textOf(e)}`));
        break;
      case 'actions':
        if (Array.isArray(b.elements))
          out.push(b.elements.map((e) => `[${textOf(textElement(e))}]`).join(' '));
        break;
      case 'divider':
        out.push('────────');
        break;
      default:
        break;
    }
  }
  return out.length > 0 ? out.join('\n') : plainText(message.text);
}

function textElement(e: unknown): unknown {
  return typeof e === 'object' && e !== null ? (e as { text?: unknown }).text : undefined;
}

/** `ip-10-0-1-2.us-west-2.compute.internal` → `ip-10-0-1-2`; an event without a node → its incident id. */
export function threadTag(event: Pick<ProgressEvent, 'node' | 'incidentId'>): string {
  const short = event.node.split('.')[0] ?? '';
  return short || event.incidentId || '?';
}

export interface ConsoleChatOptions {
  chat: ChatPort;
  /** The local operator is an admin by default: the demo is their laptop. */
  authz?: Authorizer;
  /** The operator's pseudo user id, shown in the audit trail as `slack:<id>`. */
  userId?: string;
  write?: (text: string) => void;
  logger?: Logger;
}

export class ConsoleChat implements ChatSink {
  private readonly write: (text: string) => void;
  private readonly userId: string;
  private readonly deps: { chat: ChatPort; authz: Authorizer; logger?: Logger };
  private readonly alerted = new Set<string>();
  private pending: NodeActionCommand | undefined;

  constructor(options: ConsoleChatOptions) {
    this.write = options.write ?? ((t) => process.stdout.write(t));
    this.userId = options.userId ?? 'UCONSOLE1';
    this.deps = {
      chat: options.chat,
      authz: options.authz ?? { isAdmin: async () => true },
      ...(options.logger ? { logger: options.logger } : {}),
    };
  }

  postAlert(view: AlertView): void {
    if (this.alerted.has(view.incident.id)) return;
    this.alerted.add(view.incident.id);
    this.write(`\n${renderBlocks(alertMessage(view))}\n`);
  }

  /**
   * Two incidents' threads interleave on a console, so each reply names what it belongs to: the node's
   * short name, or the incident id for an event without a node.
   */
  postProgress(event: ProgressEvent): void {
    this.write(`${indent(plainText(threadReply(event).text), `    ↳ [${threadTag(event)}] `)}\n`);
  }

  updateRoot(incidentId: string, view: AlertView): void {
    const message = alertMessage(view);
    const last = renderBlocks(message).split('\n').at(-1) ?? '';
    this.write(`  ✎ alert ${incidentId} updated: ${last.replace(/^\s*· /, '')}\n`);
  }

  /** One typed line: `/gpu …`, or `yes`/`no` to a pending confirmation. Returns what was printed. */
  async handleLine(line: string): Promise<string> {
    const text = line.trim();
    let printed: string;
    if (this.pending && /^(y|yes|no|n)$/i.test(text)) {
      const cmd = this.pending;
      this.pending = undefined;
      printed = /^y/i.test(text)
        ? renderBlocks(await runConfirmedCommand(cmd, this.userId, this.deps))
        : `Cancelled: nothing was done to ${cmd.node}.`;
    } else if (/^\/gpu(\s|$)/.test(text)) {
      const reply: CommandReply = await handleGpuCommand(text.slice(4), this.userId, this.deps);
      this.pending = reply.confirm;
      // The console has no files: a report shows its summary.
      printed = reply.confirm
        ? `${renderBlocks(reply.message)}\nType yes to ${reply.confirm.kind} ${reply.confirm.node}, or no.`
        : reply.file
          ? reply.file.fallback
          : renderBlocks(reply.message);
    } else if (text.length === 0) {
      return '';
    } else {
      printed = 'Type /gpu help for commands.';
    }
    this.write(`${indent(printed, '  │ ')}\n`);
    return printed;
  }

  /** Answers lines from `input` (stdin) until it ends; resolves then. */
  async attach(input: Readable): Promise<void> {
    const rl = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY, terminal: false });
    for await (const line of rl) {
      await this.handleLine(line);
    }
  }
}

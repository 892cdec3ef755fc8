/** Small Block Kit constructors that cut every text to Slack's limit, so no builder can produce an invalid block. */
import type { types } from '@slack/bolt';
import { SlackLimits, truncate } from './limits.js';

export type KnownBlock = types.KnownBlock;
export type Button = types.Button;

export function plain(text: string, max: number): types.PlainTextElement {
  return { type: 'plain_text', text: truncate(text, max) || ' ', emoji: true };
}

export function mrkdwn(text: string, max: number = SlackLimits.sectionText): types.MrkdwnElement {
  return { type: 'mrkdwn', text: truncate(text, max) || ' ' };
}

export function header(text: string): types.HeaderBlock {
  return { type: 'header', text: plain(text.replace(/\s+/g, ' '), SlackLimits.headerText) };
}

export function section(text: string): types.SectionBlock {
  return { type: 'section', text: mrkdwn(text, SlackLimits.sectionText) };
}

/** A two-column fields section; pairs beyond Slack's 10 fields are dropped (callers pass at most 10). */
export function fieldsSection(
  fields: readonly (readonly [label: string, value: string])[],
): types.SectionBlock {
  return {
    type: 'section',
    fields: fields
      .slice(0, SlackLimits.sectionFields)
      .map(([label, value]) => mrkdwn(`*${label}*\n${value}`, SlackLimits.fieldText)),
  };
}

export function context(...texts: string[]): types.ContextBlock {
  return {
    type: 'context',
    elements: texts.slice(0, SlackLimits.contextElements).map((t) => mrkdwn(t, SlackLimits.contextText)),
  };
}

export function divider(): types.DividerBlock {
  return { type: 'divider' };
}

/**
 * A fenced code block holding `lines`, cut to fit one section: lines beyond the budget are replaced by a
 * "… N more lines" note, and over-long lines are shortened, so the fence always closes.
 */
export function codeSection(
  lines: readonly string[],
  title?: string,
  maxLineLength = 300,
): types.SectionBlock {
  const prefix = title ? `${title}\n` : '';
  const open = '```\n';
  const close = '\n```';
  const budget = SlackLimits.sectionText - prefix.length - open.length - close.length - 40;
  const kept: string[] = [];
  let used = 0;
  for (const [i, raw] of lines.entries()) {
    // Escape for mrkdwn and neutralise fences: log text must not close our code block.
    const line = truncate(
      raw.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/```/g, 'ˋˋˋ'),
      maxLineLength,
    );
    if (used + line.length + 1 > budget) {
      kept.push(`… ${lines.length - i} more line${lines.length - i === 1 ? '' : 's'}`);
      break;
    }
    kept.push(line);
    used += line.length + 1;
  }
  const body = kept.length > 0 ? kept.join('\n') : '(none)';
  return { type: 'section', text: mrkdwn(prefix + open + body + close, SlackLimits.sectionText) };
}

/**
 * Lines packed into as few sections as fit (3000 chars each), using at most `maxBlocks` blocks; what does
 * not fit becomes "… and N more" so a long list never breaks the message.
 */
export function lineSections(lines: readonly string[], maxBlocks: number): types.SectionBlock[] {
  const out: types.SectionBlock[] = [];
  let current: string[] = [];
  let size = 0;
  const reserve = 40;
  for (const [i, raw] of lines.entries()) {
    const line = truncate(raw, SlackLimits.sectionText - reserve);
    if (size + line.length + 1 > SlackLimits.sectionText - reserve) {
      if (out.length + 1 >= maxBlocks) {
        current.push(`… and ${lines.length - i} more`);
        break;
      }
      out.push(section(current.join('\n')));
      current = [];
      size = 0;
    }
    current.push(line);
    size += line.length + 1;
  }
  if (current.length > 0 && out.length < maxBlocks) out.push(section(current.join('\n')));
  return out;
}

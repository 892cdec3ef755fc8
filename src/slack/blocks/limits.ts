/**
 * Slack's Block Kit limits, enforced by every builder (truncate) and checked by tests (assertSlackLimits).
 * Slack rejects a whole message (`invalid_blocks`) when one field is too long, so a builder that lets a
 * long evidence line through would lose the alert entirely: the builders cut, and the checker proves it.
 */
import type { types } from '@slack/bolt';

export const SlackLimits = {
  messageBlocks: 50,
  viewBlocks: 100,
  /** chat.postMessage `text`: Slack truncates longer text; we cut it ourselves, with an ellipsis. */
  messageText: 40_000,
  sectionText: 3000,
  sectionFields: 10,
  fieldText: 2000,
  headerText: 150,
  contextElements: 10,
  contextText: 3000,
  actionsElements: 25,
  buttonText: 75,
  buttonValue: 2000,
  buttonUrl: 3000,
  actionId: 255,
  blockId: 255,
  confirmTitle: 100,
  confirmText: 300,
  confirmButton: 30,
} as const;

const ellipsis = '…';

/** Cut `text` to at most `max` UTF-16 units, ending with "…"; never splits a surrogate pair. */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= 0) return '';
  let end = max - ellipsis.length;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end -= 1;
  return text.slice(0, Math.max(0, end)) + ellipsis;
}

type AnyBlock = types.AnyBlock;
type TextObject = { type: string; text: string };

function isTextObject(value: unknown): value is TextObject {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { type?: unknown }).type === 'string' &&
    typeof (value as { text?: unknown }).text === 'string'
  );
}

function checkText(where: string, value: unknown, max: number, out: string[], plainOnly = false): void {
  if (!isTextObject(value)) {
    out.push(`${where}: missing text object`);
    return;
  }
  if (value.type !== 'plain_text' && value.type !== 'mrkdwn')
    out.push(`${where}: bad text type ${value.type}`);
  if (plainOnly && value.type !== 'plain_text') out.push(`${where}: must be plain_text`);
  if (value.text.length === 0) out.push(`${where}: empty text`);
  if (value.text.length > max) out.push(`${where}: ${value.text.length} chars > ${max}`);
}

function checkElement(where: string, element: unknown, out: string[]): void {
  if (typeof element !== 'object' || element === null) {
    out.push(`${where}: not an object`);
    return;
  }
  const e = element as Record<string, unknown>;
  if (typeof e.action_id === 'string' && e.action_id.length > SlackLimits.actionId) {
    out.push(`${where}.action_id: ${e.action_id.length} chars > ${SlackLimits.actionId}`);
  }
  if (e.type !== 'button') return;
  checkText(`${where}.text`, e.text, SlackLimits.buttonText, out, true);
  if (typeof e.value === 'string' && e.value.length > SlackLimits.buttonValue) {
    out.push(`${where}.value: ${e.value.length} chars > ${SlackLimits.buttonValue}`);
  }
  if (typeof e.url === 'string' && e.url.length > SlackLimits.buttonUrl) {
    out.push(`${where}.url: ${e.url.length} chars > ${SlackLimits.buttonUrl}`);
  }
  if (e.style !== undefined && e.style !== 'primary' && e.style !== 'danger') {
    out.push(`${where}.style: ${String(e.style)} is not primary|danger`);
  }
  if (e.confirm !== undefined) {
    const c = e.confirm as Record<string, unknown>;
    checkText(`${where}.confirm.title`, c.title, SlackLimits.confirmTitle, out, true);
    checkText(`${where}.confirm.text`, c.text, SlackLimits.confirmText, out);
    checkText(`${where}.confirm.confirm`, c.confirm, SlackLimits.confirmButton, out, true);
    checkText(`${where}.confirm.deny`, c.deny, SlackLimits.confirmButton, out, true);
  }
}

function checkBlock(where: string, block: AnyBlock, out: string[]): void {
  const b = block as unknown as Record<string, unknown>;
  switch (block.type) {
    case 'header':
      checkText(`${where}.text`, b.text, SlackLimits.headerText, out, true);
      break;
    case 'section': {
      const fields = b.fields;
      if (b.text === undefined && fields === undefined) out.push(`${where}: section without text or fields`);
      if (b.text !== undefined) checkText(`${where}.text`, b.text, SlackLimits.sectionText, out);
      if (Array.isArray(fields)) {
        if (fields.length > SlackLimits.sectionFields) {
          out.push(`${where}.fields: ${fields.length} > ${SlackLimits.sectionFields}`);
        }
        for (const [i, f] of fields.entries())
          checkText(`${where}.fields[${i}]`, f, SlackLimits.fieldText, out);
      }
      if (b.accessory !== undefined) checkElement(`${where}.accessory`, b.accessory, out);
      break;
    }
    case 'context': {
      const elements = Array.isArray(b.elements) ? b.elements : [];
      if (elements.length === 0) out.push(`${where}: context without elements`);
      if (elements.length > SlackLimits.contextElements) {
        out.push(`${where}.elements: ${elements.length} > ${SlackLimits.contextElements}`);
      }
      elements.forEach((e, i) => {
        if (isTextObject(e)) checkText(`${where}.elements[${i}]`, e, SlackLimits.contextText, out);
      });
      break;
    }
    case 'actions': {
      const elements = Array.isArray(b.elements) ? b.elements : [];
      if (elements.length === 0) out.push(`${where}: actions without elements`);
      if (elements.length > SlackLimits.actionsElements) {
        out.push(`${where}.elements: ${elements.length} > ${SlackLimits.actionsElements}`);
      }
      const ids = new Set<string>();
      elements.forEach((e, i) => {
        checkElement(`${where}.elements[${i}]`, e, out);
        const id = (e as { action_id?: unknown }).action_id;
        if (typeof id === 'string') {
          if (ids.has(id)) out.push(`${where}.elements[${i}]: duplicate action_id ${id}`);
          ids.add(id);
        }
      });
      break;
    }
    default:
      break;
  }
}

export interface LimitOptions {
  /** 50 for messages (default), 100 for modals and the Home tab. */
  maxBlocks?: number;
  /** The message's top-level `text` fallback, checked when given. */
  text?: string;
}

/** Every Slack limit the given blocks break, as readable strings; empty when Slack would accept them. */
export function slackLimitViolations(blocks: readonly AnyBlock[], options: LimitOptions = {}): string[] {
  const out: string[] = [];
  const maxBlocks = options.maxBlocks ?? SlackLimits.messageBlocks;
  if (blocks.length > maxBlocks) out.push(`blocks: ${blocks.length} > ${maxBlocks}`);
  if (options.text !== undefined) {
    if (options.text.length === 0) out.push('text: empty fallback');
    if (options.text.length > SlackLimits.messageText) {
      out.push(`text: ${options.text.length} chars > ${SlackLimits.messageText}`);
    }
  }
  const blockIds = new Set<string>();
  blocks.forEach((block, i) => {
    const where = `blocks[${i}](${block.type})`;
    if (block.block_id !== undefined) {
      if (block.block_id.length > SlackLimits.blockId) {
        out.push(`${where}.block_id: ${block.block_id.length} chars > ${SlackLimits.blockId}`);
      }
      if (blockIds.has(block.block_id)) out.push(`${where}: duplicate block_id ${block.block_id}`);
      blockIds.add(block.block_id);
    }
    checkBlock(where, block, out);
  });
  return out;
}

/** Throws an Error listing every violated limit. For tests and for a last check before posting. */
export function assertSlackLimits(blocks: readonly AnyBlock[], options: LimitOptions = {}): void {
  const violations = slackLimitViolations(blocks, options);
  if (violations.length > 0) throw new Error(`Slack limits violated:\n- ${violations.join('\n- ')}`);
}

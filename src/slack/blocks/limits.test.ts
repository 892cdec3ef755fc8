import { describe, expect, it } from 'vitest';
import {
  codeSection,
  context,
  fieldsSection,
  header,
  type KnownBlock,
  lineSections,
  section,
} from './kit.js';
import { assertSlackLimits, SlackLimits, slackLimitViolations, truncate } from './limits.js';

const button = (overrides: Record<string, unknown> = {}) => ({
  type: 'button' as const,
  action_id: 'a',
  text: { type: 'plain_text' as const, text: 'Go' },
  value: 'v',
  ...overrides,
});

describe('slackLimitViolations', () => {
  it.each<[string, KnownBlock[], RegExp]>([
    ['too many blocks', Array.from({ length: 51 }, () => ({ type: 'divider' as const })), /blocks: 51 > 50/],
    [
      'long header',
      [{ type: 'header', text: { type: 'plain_text', text: 'h'.repeat(151) } }],
      /151 chars > 150/,
    ],
    [
      'mrkdwn header',
      [{ type: 'header', text: { type: 'mrkdwn', text: 'h' } as never }],
      /must be plain_text/,
    ],
    [
      'long section',
      [{ type: 'section', text: { type: 'mrkdwn', text: 's'.repeat(3001) } }],
      /3001 chars > 3000/,
    ],
    ['empty section', [{ type: 'section', text: { type: 'mrkdwn', text: '' } }], /empty text/],
    ['bare section', [{ type: 'section' }], /without text or fields/],
    [
      'eleven fields',
      [
        {
          type: 'section',
          fields: Array.from({ length: 11 }, () => ({ type: 'mrkdwn' as const, text: 'f' })),
        },
      ],
      /fields: 11 > 10/,
    ],
    [
      'long field',
      [{ type: 'section', fields: [{ type: 'mrkdwn', text: 'f'.repeat(2001) }] }],
      /2001 chars > 2000/,
    ],
    ['long block id', [{ type: 'divider', block_id: 'b'.repeat(256) }], /block_id: 256 chars > 255/],
    [
      'duplicate block id',
      [
        { type: 'divider', block_id: 'x' },
        { type: 'divider', block_id: 'x' },
      ],
      /duplicate block_id x/,
    ],
    [
      'eleven context elements',
      [
        {
          type: 'context',
          elements: Array.from({ length: 11 }, () => ({ type: 'mrkdwn' as const, text: 'c' })),
        },
      ],
      /elements: 11 > 10/,
    ],
    [
      'long button text',
      [{ type: 'actions', elements: [button({ text: { type: 'plain_text', text: 'b'.repeat(76) } })] }],
      /76 chars > 75/,
    ],
    [
      'long value',
      [{ type: 'actions', elements: [button({ value: 'v'.repeat(2001) })] }],
      /value: 2001 chars > 2000/,
    ],
    [
      'long action id',
      [{ type: 'actions', elements: [button({ action_id: 'a'.repeat(256) })] }],
      /action_id: 256 chars > 255/,
    ],
    ['bad style', [{ type: 'actions', elements: [button({ style: 'warning' })] }], /style: warning/],
    ['duplicate action id', [{ type: 'actions', elements: [button(), button()] }], /duplicate action_id a/],
    [
      'long confirm',
      [
        {
          type: 'actions',
          elements: [
            button({
              confirm: {
                title: { type: 'plain_text', text: 't'.repeat(101) },
                text: { type: 'plain_text', text: 'x'.repeat(301) },
                confirm: { type: 'plain_text', text: 'c'.repeat(31) },
                deny: { type: 'plain_text', text: 'Cancel' },
              },
            }),
          ],
        },
      ],
      /confirm.title: 101 chars > 100[\s\S]*confirm.text: 301 chars > 300[\s\S]*confirm.confirm: 31 chars > 30/,
    ],
    ['empty actions', [{ type: 'actions', elements: [] }], /actions without elements/],
  ])('finds %s', (_name, blocks, expected) => {
    expect(slackLimitViolations(blocks).join('\n')).toMatch(expected);
    expect(() => assertSlackLimits(blocks)).toThrow(expected);
  });

  it('checks the fallback text', () => {
    expect(slackLimitViolations([], { text: '' })).toEqual(['text: empty fallback']);
    expect(slackLimitViolations([], { text: 't'.repeat(40_001) })).toEqual(['text: 40001 chars > 40000']);
  });

  it('accepts 100 blocks in a view', () => {
    const blocks = Array.from({ length: 100 }, () => ({ type: 'divider' as const }));
    expect(slackLimitViolations(blocks, { maxBlocks: SlackLimits.viewBlocks })).toEqual([]);
  });
});

describe('truncate', () => {
  it.each<[string, number, string]>([
    ['hello', 5, 'hello'],
    ['hello!', 5, 'hell…'],
    ['ab', 1, '…'],
    ['x', 0, ''],
    ['a🔴b', 3, 'a…'],
  ])('%j to %i → %j', (text, max, expected) => {
    expect(truncate(text, max)).toBe(expected);
    expect(truncate(text, max).length).toBeLessThanOrEqual(max);
  });
});

describe('kit constructors stay within limits for any input', () => {
  it.each([0, 1, 150, 3000, 100_000])('text of %i chars', (len) => {
    const t = 'x'.repeat(len);
    const blocks: KnownBlock[] = [
      header(t),
      section(t),
      fieldsSection(Array.from({ length: 12 }, () => ['L', t] as const)),
      context(...Array.from({ length: 12 }, () => t)),
      codeSection(Array.from({ length: 50 }, () => t)),
      ...lineSections(
        Array.from({ length: 100 }, () => t),
        10,
      ),
    ];
    assertSlackLimits(blocks);
  });

  it('lineSections keeps every line when they fit and counts the rest when not', () => {
    const lines = Array.from({ length: 1000 }, (_, i) => `line ${i} ${'x'.repeat(100)}`);
    const blocks = lineSections(lines, 5);
    expect(blocks).toHaveLength(5);
    const text = blocks.map((b) => b.text?.text ?? '').join('\n');
    const shown = text.split('\n').filter((l) => l.startsWith('line ')).length;
    expect(text).toContain(`… and ${1000 - shown} more`);
    expect(lineSections(['a', 'b'], 5).map((b) => b.text?.text)).toEqual(['a\nb']);
  });
});

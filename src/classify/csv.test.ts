import { describe, expect, it } from 'vitest';
import { CsvError, parseCsv, parseCsvRecords } from './csv.js';

describe('parseCsv', () => {
  it.each([
    [
      'plain',
      'a,b\n1,2\n',
      [
        ['a', 'b'],
        ['1', '2'],
      ],
    ],
    [
      'CRLF',
      'a,b\r\n1,2\r\n',
      [
        ['a', 'b'],
        ['1', '2'],
      ],
    ],
    ['quoted comma', 'a,"x, y"\n', [['a', 'x, y']]],
    [
      'quoted newline',
      'a,"l1\nl2"\nb,c',
      [
        ['a', 'l1\nl2'],
        ['b', 'c'],
      ],
    ],
    ['doubled quote', 'a,"say ""hi"""\n', [['a', 'say "hi"']]],
    ['empty fields', ',,\n', [['', '', '']]],
    ['no trailing newline', 'a,b', [['a', 'b']]],
  ])('%s', (_n, text, rows) => {
    expect(parseCsv(text)).toEqual(rows);
  });

  it.each([
    ['unterminated quote', 'a,"open\n'],
    ['text after closing quote', 'a,"x"y\n'],
  ])('throws CsvError on %s', (_n, text) => {
    expect(() => parseCsv(text)).toThrow(CsvError);
  });

  it('maps records by header and rejects ragged rows', () => {
    expect(parseCsvRecords('k,v\n1,2\n')).toEqual([{ k: '1', v: '2' }]);
    expect(() => parseCsvRecords('k,v\n1\n')).toThrow(/1 columns, header has 2/);
  });
});

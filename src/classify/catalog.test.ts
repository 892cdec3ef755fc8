import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  CatalogError,
  dcgmFrCatalogFromCsv,
  loadDcgmFrCatalog,
  loadXidCatalog,
  xidCatalogFromCsv,
} from './catalog.js';

const HEADER = 'xid,name,category,default_severity,recommended_action,source_note\n';

describe('XID catalog', () => {
  const catalog = loadXidCatalog();

  it('loads every row of data/xid-catalog.csv (1–172), once', () => {
    expect(catalog.all()).toHaveLength(172);
    expect(catalog.all()[0]?.xid).toBe(1);
    expect(catalog.all().at(-1)?.xid).toBe(172);
    expect(loadXidCatalog()).toBe(catalog);
  });

  it('keeps name, category and note; maps reset_gpu to reboot', () => {
    expect(catalog.get(79)).toMatchObject({
      severity: 'critical',
      action: 'reboot',
      category: expect.stringContaining('Bus'),
    });
    expect(catalog.get(48)).toMatchObject({
      severity: 'critical',
      action: 'reboot',
      catalogAction: 'reset_gpu',
    });
    expect(catalog.get(999)).toBeUndefined();
  });

  it.each([
    ['a bad severity', `${HEADER}1,X,HW,urgent,monitor,n\n`, /default_severity/],
    ['a non-numeric xid', `${HEADER}one,X,HW,warning,monitor,n\n`, /xid must be an integer/],
    ['a duplicate xid', `${HEADER}1,X,HW,warning,monitor,n\n1,Y,HW,warning,monitor,n\n`, /duplicate XID 1/],
  ])('rejects %s with the row number', (_n, text, msg) => {
    expect(() => xidCatalogFromCsv(text)).toThrow(CatalogError);
    expect(() => xidCatalogFromCsv(text)).toThrow(msg);
  });
});

describe('DCGM_FR codes', () => {
  const fr = loadDcgmFrCatalog();

  it.each([
    ['GPU 3 has fallen off the bus', 'DCGM_FR_FALLEN_OFF_BUS'],
    ['Detected XID 79 for GPU 2', 'DCGM_FR_XID_ERROR'],
    ['GPU 1 had uncorrectable memory errors and row remapping failed.', 'DCGM_FR_ROW_REMAP_FAILURE'],
    ['Detected more than 8 PCIe replays per minute for GPU 0 : 11', 'DCGM_FR_PCI_REPLAY_RATE'],
  ])('matches "%s" to %s', (message, name) => {
    expect(fr.match(message)?.name).toBe(name);
  });

  it('matches nothing for free text, and looks codes up by name and number', () => {
    expect(fr.match('the GPU is sad')).toBeUndefined();
    expect(fr.byName('DCGM_FR_FALLEN_OFF_BUS')?.code).toBe(120);
    expect(fr.byCode(120)?.name).toBe('DCGM_FR_FALLEN_OFF_BUS');
  });

  it('rejects a row that is not a DCGM_FR code', () => {
    const csv = readFileSync(new URL('../../data/dcgm-fr-codes.csv', import.meta.url), 'utf8').split('\n')[0];
    expect(() => dcgmFrCatalogFromCsv(`${csv}\n1,NOT_FR,a,b,c,d,e\n`)).toThrow(CatalogError);
  });
});

import { describe, expect, it } from 'vitest';
import { fakeRules, gpus, snapshot, xidLine } from '../../../test/support/llm.js';
import { defaultClassificationPolicy } from '../../domain/policy.js';
import { normalizeLine, signatureOf } from './signature.js';

const policy = defaultClassificationPolicy;

describe('normalizeLine', () => {
  it.each([
    [
      '[ 1234.567890] NVRM: Xid (PCI:0000:3b:00): 79, pid=4242, name=python3, GPU has fallen off the bus.',
      '<ts> nvrm: xid_79, pid=<pid>, name=<proc>, gpu has fallen off the bus.',
    ],
    ['2025-03-01T12:00:01.123Z fabricmanager: link down on GPU 3', '<ts> fabricmanager: link down on gpu<i>'],
    [
      'Mar  3 12:00:01 ip-10-0-1-23.ec2.internal kernel: error at 0x7f3a9c001000',
      '<ts> <host> kernel: error at <hex>',
    ],
    [
      'gpu GPU-5d4c3b2a-1111-2222-3333-444455556666 on i-0123456789abcdef0 (10.0.3.4)',
      'gpu <uuid> on <instance> (<ip>)',
    ],
    ['retired 17 pages on gpu=2 bus 0000:af:00.0', 'retired <n> pages on gpu<i> bus <pci>'],
    ['Xid 154: GPU recovery action changed', 'xid_154: gpu recovery action changed'],
  ])('%s', (line, expected) => {
    expect(normalizeLine(line)).toBe(expected);
  });

  it('removes the node name', () => {
    expect(normalizeLine('node gpu-node-7 reports a fault', 'gpu-node-7')).toBe(
      'node <node> reports a fault',
    );
  });
});

describe('signatureOf', () => {
  const faultOn = (node: string, i: number) => {
    const gpu = i % 8;
    const s = snapshot(node, {
      gpus: gpus(8, (g) => (g === gpu ? { xidLast: 157 } : {})),
      logLines: [
        xidLine({
          xid: 157,
          pid: 1000 + i,
          bus: (0x10 + gpu).toString(16),
          secs: 100 + i * 3.7,
          text: 'Unknown failure',
        }),
      ],
      unparsed: [`nv-fabricmanager[${2000 + i}]: ${node}: NVSwitch 0x${(i * 4096).toString(16)} degraded`],
    });
    return signatureOf(s, fakeRules(s), policy, 'hybrid');
  };

  it('is the same for one fault on many nodes', () => {
    const signatures = new Set(
      Array.from({ length: 50 }, (_, i) => faultOn(`ip-10-0-${i}-7.ec2.internal`, i)),
    );
    expect(signatures.size).toBe(1);
  });

  it('differs by XID code, text, mode and the operator taxonomy', () => {
    const base = snapshot('n1', { unparsed: ['fabric manager stopped'] });
    const sig = signatureOf(base, fakeRules(base), policy, 'hybrid');
    const otherXid = snapshot('n1', {
      gpus: gpus(8, (g) => (g === 0 ? { xidLast: 158 } : {})),
      unparsed: ['fabric manager stopped'],
    });
    const otherText = snapshot('n1', { unparsed: ['fabric manager started'] });
    const custom = {
      ...policy,
      categories: [
        {
          name: 'FABRIC_MANAGER_DOWN',
          description: 'fm down',
          severity: 'critical' as const,
          action: 'reboot' as const,
        },
      ],
    };
    expect(signatureOf(otherXid, fakeRules(otherXid), policy, 'hybrid')).not.toBe(sig);
    expect(signatureOf(otherText, fakeRules(otherText), policy, 'hybrid')).not.toBe(sig);
    expect(signatureOf(base, fakeRules(base), policy, 'llm')).not.toBe(sig);
    expect(signatureOf(base, fakeRules(base), custom, 'hybrid')).not.toBe(sig);
  });
});

describe('normalizeLine with short node names', () => {
  it('replaces the name only as a whole word', () => {
    expect(normalizeLine('b: NVRM: Xid (PCI:0000:1b:00): 157, name=python3', 'b')).toBe(
      '<node>: nvrm: xid_157, name=<proc>',
    );
  });
});

import { describe, expect, it } from 'vitest';
import { RemediationActions } from '../domain/incident.js';
import { escalateToAfter, escalationAfter } from './escalation.js';

describe('the escalation ladder', () => {
  it('reset → reboot → replace → a human', () => {
    expect(escalationAfter('reset')).toBe('reboot');
    expect(escalationAfter('reboot')).toBe('replace');
    expect(escalationAfter('replace')).toBe('human');
  });

  it('actions that repair nothing go to a human; the journal field is undefined then', () => {
    for (const a of RemediationActions.filter((x) => x !== 'reset' && x !== 'reboot')) {
      expect(escalationAfter(a)).toBe('human');
      expect(escalateToAfter(a)).toBeUndefined();
    }
    expect(escalateToAfter('reset')).toBe('reboot');
  });
});

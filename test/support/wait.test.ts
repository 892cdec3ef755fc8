import { describe, expect, it } from 'vitest';
import { waitFor } from './wait.js';

describe('waitFor', () => {
  it('resolves with the first value that is not undefined, null or false', async () => {
    const answers: unknown[] = [undefined, null, false, 0];
    const value = await waitFor('a number', () => answers.shift() as number | undefined, { intervalMs: 1 });
    expect(value).toBe(0);
    expect(answers).toEqual([]);
  });

  it('awaits an asynchronous check', async () => {
    let calls = 0;
    const value = await waitFor('the third call', async () => (++calls === 3 ? 'done' : undefined), {
      intervalMs: 1,
    });
    expect(value).toBe('done');
  });

  it('names what it waited for and shows the context when it gives up', async () => {
    const failure = waitFor('the moon', () => false, {
      timeoutMs: 1,
      intervalMs: 1,
      context: () => ({ seen: 3 }),
    });
    await expect(failure).rejects.toThrow(/timed out after 1 ms waiting for the moon\n\{\n {2}"seen": 3\n\}/);
    const plain = waitFor('the sun', () => undefined, {
      timeoutMs: 1,
      intervalMs: 1,
      context: () => 'log tail',
    });
    await expect(plain).rejects.toThrow('timed out after 1 ms waiting for the sun\nlog tail');
  });

  it('ends at once when a process it depends on has exited', async () => {
    const child = { name: 'medic-a', alive: () => false };
    await expect(waitFor('a leader', () => undefined, { alive: [child] })).rejects.toThrow(
      'medic-a exited while waiting for a leader',
    );
  });
});

import type { Clock } from '../../src/remediate/ports.js';

/**
 * Test-only clock: `sleep` moves time forward at once and fires the timers that fell due (the fake cluster's
 * reboots and replacements), so the engine's waits and timeouts run without real waiting.
 */
export class FakeClock implements Clock {
  private time: number;
  private seq = 0;
  private timers: { at: number; seq: number; fn: () => void }[] = [];
  sleeps = 0;

  constructor(start = Date.parse('2025-01-01T00:00:00Z')) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  schedule(ms: number, fn: () => void): void {
    this.timers.push({ at: this.time + Math.max(0, ms), seq: this.seq++, fn });
  }

  advance(ms: number): void {
    const target = this.time + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.time = Math.max(this.time, due.at);
      due.fn();
    }
    this.time = target;
  }

  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return;
    this.sleeps++;
    this.advance(ms);
    // Yield, so concurrent runs interleave as they would on a real event loop.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

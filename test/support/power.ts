/**
 * Test-only: a simulated power cut. Every in-memory store write and every fake port call goes through it;
 * `crashAt` kills the "process" just before or just after the Nth store write, after which every store and
 * port call throws, exactly as if the process had died there. `restore()` is the restart.
 */
export class SimulatedCrash extends Error {
  readonly code = 'SIMULATED_CRASH';
  constructor() {
    super('simulated crash');
    this.name = 'SimulatedCrash';
  }
}

export class Power {
  writes = 0;
  dead = false;
  private crashAt: { write: number; phase: 'before' | 'after' } | undefined;

  arm(write: number, phase: 'before' | 'after'): void {
    this.writes = 0;
    this.crashAt = { write, phase };
  }

  check(): void {
    if (this.dead) throw new SimulatedCrash();
  }

  write<T>(apply: () => T): T {
    this.check();
    this.writes++;
    const hit = this.crashAt?.write === this.writes;
    if (hit && this.crashAt?.phase === 'before') this.kill();
    const result = apply();
    if (hit && this.crashAt?.phase === 'after') this.kill();
    return result;
  }

  restore(): void {
    this.dead = false;
    this.crashAt = undefined;
  }

  private kill(): never {
    this.dead = true;
    throw new SimulatedCrash();
  }
}

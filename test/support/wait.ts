/**
 * The one way tests wait for a condition: poll `check` until it yields a value. The deadline only bounds a
 * hung test, it is never an assertion about speed; when it passes, the error names what was awaited and
 * appends `context` (child output, database rows, recorded calls) so the failure explains itself.
 */

export interface WaitOptions {
  /** How long before giving up; 20 s unless told (below vitest's 30 s test timeout, so this message wins). */
  timeoutMs?: number;
  /** How often to poll; 50 ms unless told. */
  intervalMs?: number;
  /** What to show with a timeout: a string as it is, anything else as JSON. */
  context?: () => unknown;
  /** Processes that must stay up meanwhile: one that exits ends the wait at once. */
  alive?: ReadonlyArray<{ readonly name: string; alive(): boolean }>;
}

/** Not there yet: `check` returned undefined, null or false. Anything else is the awaited value. */
type Pending = undefined | null | false;

export async function waitFor<T>(
  what: string,
  check: () => T | Pending | Promise<T | Pending>,
  options: WaitOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== null && value !== false) return value as T;
    const dead = options.alive?.find((p) => !p.alive());
    if (dead) throw new Error(`${dead.name} exited while waiting for ${what}${describe(options.context)}`);
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${describe(options.context)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50));
  }
}

function describe(context: (() => unknown) | undefined): string {
  if (!context) return '';
  const shown = context();
  return `\n${typeof shown === 'string' ? shown : JSON.stringify(shown, null, 2)}`;
}

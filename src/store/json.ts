/** JSON columns: written by us, but read defensively — a hand-edited row must not crash a scan. */
export function toJson(value: unknown): string {
  return JSON.stringify(value ?? null);
}

export function fromJson<T>(text: string | null | undefined, fallback: T): T {
  if (text === null || text === undefined) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

export type Clock = () => number;

/** SQLite NULL → undefined, so rows map onto optional fields. */
export function opt<T>(v: T | null): T | undefined {
  return v === null ? undefined : v;
}

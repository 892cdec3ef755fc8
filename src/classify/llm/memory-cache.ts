/**
 * An in-process SignatureCache: for tests and for running without a database. The SQLite one in
 * src/store/ is the production cache (it survives a restart; this does not).
 */
import type { CachedClassification, SignatureCache } from '../../domain/ports.js';

export class MemorySignatureCache implements SignatureCache {
  private readonly entries = new Map<string, { value: CachedClassification; expiresAt: number }>();

  get(signature: string, now: number): CachedClassification | undefined {
    const entry = this.entries.get(signature);
    if (!entry) return undefined;
    if (entry.expiresAt <= now) {
      this.entries.delete(signature);
      return undefined;
    }
    return entry.value;
  }

  put(signature: string, value: CachedClassification, expiresAt: number): void {
    this.entries.set(signature, { value, expiresAt });
  }

  get size(): number {
    return this.entries.size;
  }
}

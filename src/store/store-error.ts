export type StoreErrorCode =
  | 'STORE_UNWRITABLE'
  | 'STORE_NOT_SQLITE'
  | 'STORE_CORRUPT'
  | 'STORE_TOO_NEW'
  | 'STORE_MIGRATION_FAILED'
  | 'STORE_OPEN_FAILED'
  /** PostgreSQL cannot be reached right now (it reconnects by itself); the call was not carried out. */
  | 'STORE_UNAVAILABLE';

/**
 * A database that cannot be used as it is. The message names the file (or PostgreSQL host:port/database,
 * never a password) and what the operator can do.
 */
export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StoreError';
  }
}

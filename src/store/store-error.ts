export type StoreErrorCode =
  | 'STORE_UNWRITABLE'
  | 'STORE_NOT_SQLITE'
  | 'STORE_CORRUPT'
  | 'STORE_TOO_NEW'
  | 'STORE_MIGRATION_FAILED'
  | 'STORE_OPEN_FAILED'
  /**
   * PostgreSQL cannot be reached right now (it reconnects by itself). A read or a statement inside a transaction
   * was not carried out; a COMMIT (or a lone write) cut off after the server received it may have been.
   */
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

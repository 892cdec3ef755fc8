/**
 * The one way the application opens its store: PostgreSQL when a database URL is configured (the cluster's
 * own schema in it), otherwise the SQLite file. Both give the same `Store`.
 */
import { type OpenPgStoreOptions, openPostgresStore } from './pg/open-pg.js';
import { type OpenStoreOptions, openStore, type Store } from './store.js';

export interface StoreTarget {
  /** The SQLite file, used when `databaseUrl` is not set. */
  readonly dbPath: string;
  /** postgres://…: PostgreSQL instead of SQLite. */
  readonly databaseUrl?: string;
  /** CLUSTER_NAME: PostgreSQL keeps this cluster's tables in the schema gpu_medic_<cluster>. */
  readonly cluster: string;
}

export interface OpenConfiguredStoreOptions extends Omit<OpenStoreOptions, 'migrations'> {
  /** PostgreSQL connection tuning (timeouts, reconnect backoff). */
  postgres?: OpenPgStoreOptions['connection'];
}

export function openStoreFor(target: StoreTarget, options: OpenConfiguredStoreOptions = {}): Store {
  const { postgres, ...common } = options;
  if (target.databaseUrl) {
    return openPostgresStore(target.databaseUrl, target.cluster, {
      ...(common.logger ? { logger: common.logger } : {}),
      ...(common.now ? { now: common.now } : {}),
      ...(postgres ? { connection: postgres } : {}),
    });
  }
  return openStore(target.dbPath, common);
}

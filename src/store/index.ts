export { SqliteAuditLog } from './audit-log.js';
export type { ExclusionRepo } from './exclusion-repo.js';
export type { FleetRepo } from './fleet-repo.js';
export type { GpuStateRepo, GpuStateRow } from './gpu-state-repo.js';
export type {
  IncidentFilter,
  IncidentInput,
  IncidentPatch,
  IncidentRepo,
  OpenOrTouchResult,
} from './incident-repo.js';
export { newIncidentId } from './incident-repo.js';
export type { KvRepo } from './kv-repo.js';
export { SqliteSignatureCache } from './llm-cache.js';
export { migrate, validateMigrations } from './migrate.js';
export { latestSchemaVersion, type Migration, migrations } from './migrations.js';
export type { NodeStateRecord, NodeStateRepo } from './node-state-repo.js';
export { type OpenConfiguredStoreOptions, openStoreFor, type StoreTarget } from './open-store.js';
export type { EnqueueResult, OutboxMessage, OutboxRepo, OutboxStatus } from './outbox-repo.js';
export { schemaFor } from './pg/open-pg.js';
export type { RepairRecordRepo } from './repair-record-repo.js';
export type {
  FleetRequest,
  FleetRequestKind,
  FleetRequestStatus,
  NewFleetRequest,
  RequestRepo,
} from './request-repo.js';
export type { SlackRef, SlackRefRepo } from './slack-ref-repo.js';
export type { SqlDatabase, SqlDialect, SqlStatement } from './sql.js';
export type { StepFinish, StepRecord, StepRepo, StepStatus } from './step-repo.js';
export { type OpenStoreOptions, openStore, type Store } from './store.js';
export { StoreError, type StoreErrorCode } from './store-error.js';

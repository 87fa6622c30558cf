export { type AzureBlobStoreOptions, azureBlobStore } from './azure-blob.js';
export {
  type CommandOutcome,
  isObjectLocation,
  type MigrateObjectsContext,
  type MigrateObjectsOptions,
  type MigrateObjectsStatusOptions,
  migrateObjectsCommand,
  migrateObjectsStatusCommand,
  parseMaxRps,
  parseVerify,
} from './command.js';
export { type GcsStoreOptions, gcsStore } from './gcs.js';
export { type HeaderPeek, parseHeaderEdks, peekHeader } from './header.js';
export {
  fileJournal,
  JOURNAL_FORMAT,
  type JournalSink,
  type JournalState,
  JournalTakenError,
  MAX_JOURNAL_BYTES,
  objectJournal,
  type ShardCounts,
} from './journal.js';
export { type ObjectLocation, parseObjectLocation, type StoreEndpoints } from './location.js';
export { type MigrateObjectOptions, migrateObject, type ObjectOutcome } from './migrate-object.js';
export { type S3StoreOptions, s3Store } from './s3.js';
export { checkShard, MAX_SHARDS, parseShard, type Shard, shardFromEnv, shardOf } from './shard.js';
export {
  type CountHeadersOptions,
  countHeaders,
  type HeaderCounts,
  type MigrationStatus,
  type MigrationStatusOptions,
  mergeJournals,
  migrationStatus,
} from './status.js';
export {
  type BeforeRequest,
  DEFAULT_PART_SIZE,
  type ObjectAttributes,
  ObjectChangedError,
  type ObjectEntry,
  type ObjectRead,
  type ObjectStore,
  type PutOptions,
  type StoreProvider,
  type WriteCondition,
} from './store.js';
export { CallStats, type ProviderCalls, TokenBucket } from './throttle.js';
export {
  DEFAULT_JOURNAL_DIR,
  type RunShardOptions,
  runShard,
  type ShardReport,
  type VerifyMode,
} from './worker.js';

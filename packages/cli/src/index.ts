export { CLI_ERROR_EXITS, CliError, type CliErrorCode } from './cli-errors.js';
export { DEFAULT_MANIFEST } from './commands/import.js';
export { type LoadedConfig, loadConfig, parseConfigText } from './config/load.js';
export { configSchema, type KeyportConfig, PROVIDER_SCHEMES } from './config/schema.js';
export { EXIT, type ExitCode, exitCodeFor } from './exit-codes.js';
export type { CliIo } from './io.js';
export {
  type BatchingProvider,
  type BatchRecipientOptions,
  TransitBatchRecipient,
} from './migrate/batch-recipient.js';
export {
  type CiphertextItem,
  type MigrateCiphertextsOptions,
  type MigratedCiphertext,
  migrateCiphertexts,
} from './migrate/ciphertexts.js';
export {
  DEFAULT_JOURNAL,
  type MigrateCalls,
  type MigrateFilesOptions,
  type MigrateProgress,
  type MigrateSummary,
  migrateFiles,
  TEMP_SUFFIX,
} from './migrate/files.js';
export { buildProgram, run, VERSION } from './program.js';

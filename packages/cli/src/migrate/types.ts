/** The options and results of `migrateFiles` (files.ts), shared by the modules of one run. */
import type { EncryptionContext, ErrorCode, KeyOperations } from '@keyport/core';

export interface MigrateFilesOptions {
  /** Serves both keys: core's `Keyport` client. */
  readonly keys: KeyOperations;
  readonly from: string;
  readonly to: string;
  /** A directory, glob, manifest or single file (see sources.ts), or an explicit list of paths. */
  readonly target: string | readonly string[];
  readonly cwd?: string;
  /** Default `<cwd>/.keyport-migrate.journal`. */
  readonly journal?: string;
  readonly removeSource?: boolean;
  readonly dryRun?: boolean;
  /** Files in flight at once (default 8). */
  readonly jobs?: number;
  readonly signal?: AbortSignal;
  /** Deadline per provider call (batched requests too). */
  readonly timeoutMs?: number;
  readonly onProgress?: (p: MigrateProgress) => void;
  /**
   * Wrap and verify under `to` with the provider's batch API where it has one (Vault/OpenBao
   * `batch_input`): one request carries the data keys of every file waiting at that moment.
   * Default true; needs `keys` to be core's `Keyport` (to reach the provider).
   */
  readonly batch?: boolean;
  /** Follow symbolic links (to files and directories); default: report them as skipped. */
  readonly followSymlinks?: boolean;
  /** Take over the journal's lock even when its holder may still run (another host). */
  readonly breakLock?: boolean;
  /** Notes for the user (a lock taken over). */
  readonly onNote?: (text: string) => void;
  /**
   * Context pairs the messages authenticate without storing them (sealed with
   * `contextNotStored`): given to every file's rewrap and verification, as `openEnvelope`'s
   * `reproducedContext`. The migrated file leaves them out as the original did. A file bound to
   * other pairs fails (its error: `InvalidCiphertext`, as on open) and is left as it was. Never
   * journalled.
   */
  readonly reproducedContext?: EncryptionContext;
}

/** Provider calls the run made: by role (`from`, `to`) and operation, and per migrated file. */
export interface MigrateCalls {
  /** e.g. `{ "from:decrypt": 1000, "to:encryptBatch": 42, "to:decryptBatch": 42 }`. */
  readonly byOperation: Readonly<Record<string, number>>;
  /** Every call of the run divided by the files migrated. */
  readonly perFile: number;
  /** Calls that wrapped data keys under `to` (encrypt or encryptBatch) per migrated file. */
  readonly wrapPerFile: number;
  /** Items per batched request, when batching ran. */
  readonly largestBatch?: number;
}

export interface MigrateProgress {
  readonly total: number;
  readonly done: number;
  readonly migrated: number;
  readonly alreadyDone: number;
  readonly skipped: number;
  readonly failed: number;
}

export interface MigrateFailure {
  readonly file: string;
  readonly code: ErrorCode | string;
  readonly message: string;
}

export interface MigrateSummary extends MigrateProgress {
  readonly dryRun: boolean;
  readonly wouldMigrate: number;
  /** The run was stopped by its signal before every file was done. */
  readonly interrupted: boolean;
  readonly durationMs: number;
  readonly filesPerSecond: number;
  readonly journal: string | undefined;
  readonly failures: ReadonlyArray<MigrateFailure>;
  readonly skippedFiles: ReadonlyArray<{ readonly file: string; readonly reason: string }>;
  readonly calls: MigrateCalls;
}

/** What one file's step ended with (a skip or a failure is thrown instead). */
export type FileOutcome = 'migrated' | 'already' | 'would-migrate';

/** Thrown by a file's step: the file is left alone and reported as skipped, with why. */
export class SkipFile extends Error {}

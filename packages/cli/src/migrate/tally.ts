/**
 * A run's report: files counted by outcome as they settle (reported to `onProgress` after each),
 * the failures and skips with why, and the summary with the provider calls the run made.
 */
import { type ErrorCode, toKeyportError } from '@keyport/core';
import { findCliError } from '../cli-errors.js';
import type { TransitBatchRecipient } from './batch-recipient.js';
import type { CallCounter } from './call-counter.js';
import type { SkippedFile } from './sources.js';
import type { FileOutcome, MigrateCalls, MigrateFailure, MigrateProgress, MigrateSummary } from './types.js';

export class Tally {
  private readonly counts: { -readonly [K in keyof MigrateProgress]: number };
  private wouldMigrate = 0;
  private readonly failures: MigrateFailure[] = [];
  private readonly skippedFiles: SkippedFile[];

  /** `files` to visit; `skipped` already set aside by the walk (they count as done). */
  constructor(files: number, skipped: readonly SkippedFile[]) {
    this.counts = {
      total: files + skipped.length,
      done: skipped.length,
      migrated: 0,
      alreadyDone: 0,
      skipped: skipped.length,
      failed: 0,
    };
    this.skippedFiles = [...skipped];
  }

  get migrated(): number {
    return this.counts.migrated;
  }

  outcome(outcome: FileOutcome): void {
    if (outcome === 'migrated') this.counts.migrated++;
    else if (outcome === 'already') this.counts.alreadyDone++;
    else this.wouldMigrate++;
  }

  skip(file: string, reason: string): void {
    this.counts.skipped++;
    this.skippedFiles.push({ file, reason });
  }

  /** Counts a failure; returns its code (for the journal). */
  fail(file: string, e: unknown): ErrorCode | string {
    const err = findCliError(e) ?? toKeyportError(e);
    this.counts.failed++;
    this.failures.push({ file, code: err.code, message: err.message });
    return err.code;
  }

  /** One more file settled (whatever its outcome). */
  settled(): MigrateProgress {
    this.counts.done++;
    return { ...this.counts };
  }

  summary(o: {
    readonly dryRun: boolean;
    readonly interrupted: boolean;
    readonly durationMs: number;
    readonly journal: string | undefined;
    readonly calls: MigrateCalls;
  }): MigrateSummary {
    const { durationMs } = o;
    const done = this.counts.done;
    return {
      ...this.counts,
      dryRun: o.dryRun,
      wouldMigrate: this.wouldMigrate,
      interrupted: o.interrupted,
      durationMs,
      filesPerSecond: durationMs === 0 ? done : Math.round((done / durationMs) * 100_000) / 100,
      journal: o.journal,
      failures: this.failures,
      skippedFiles: this.skippedFiles,
      calls: o.calls,
    };
  }
}

/** The provider calls of a run, per operation and per migrated file (batched requests included). */
export function callsOf(
  counter: CallCounter,
  batcher: TransitBatchRecipient | undefined,
  migrated: number,
): MigrateCalls {
  if (batcher !== undefined) {
    counter.add('to', 'encryptBatch', batcher.stats.encryptRequests);
    counter.add('to', 'decryptBatch', batcher.stats.decryptRequests);
  }
  const per = (n: number): number => (migrated === 0 ? 0 : Math.round((n / migrated) * 1000) / 1000);
  return {
    byOperation: Object.fromEntries([...counter.counts].sort()),
    perFile: per(counter.total()),
    wrapPerFile: per(counter.total('to', ['encrypt', 'encryptBatch'])),
    ...(batcher !== undefined && batcher.stats.largestBatch > 0
      ? { largestBatch: batcher.stats.largestBatch }
      : {}),
  };
}

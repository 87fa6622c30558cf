/**
 * `migrateFiles`: moves envelope files from one key to another by rewrapping their headers
 * (the body is copied byte for byte), verifying that each new file opens with the new key
 * alone, and only then renaming it over the original. Every step is journaled first, so a run
 * killed at any point resumes where it stopped: see journal.ts for the states.
 */
import { createReadStream } from 'node:fs';
import { access, open, rename, stat, unlink } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import {
  type ErrorCode,
  type KeyOperations,
  KeyportError,
  keyUriScheme,
  toKeyportError,
} from '@keyport/core';
import { kmsRecipient, openStream, type Recipient, rewrapStream } from '@keyport/envelope';
import { syncDir } from '../files/sync-dir.js';
import { isBatchingProvider, TransitBatchRecipient } from './batch-recipient.js';
import { CallCounter } from './call-counter.js';
import { peekMessage } from './header-peek.js';
import { Journal } from './journal.js';
import { forEachBounded } from './pool.js';
import { expandTarget } from './sources.js';

export const TEMP_SUFFIX = '.keyport-migrate.tmp';
export const DEFAULT_JOURNAL = '.keyport-migrate.journal';

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

export interface MigrateSummary extends MigrateProgress {
  readonly dryRun: boolean;
  readonly wouldMigrate: number;
  readonly durationMs: number;
  readonly filesPerSecond: number;
  readonly journal: string | undefined;
  readonly failures: ReadonlyArray<{
    readonly file: string;
    readonly code: ErrorCode;
    readonly message: string;
  }>;
  readonly skippedFiles: ReadonlyArray<{ readonly file: string; readonly reason: string }>;
  readonly calls: MigrateCalls;
}

type Outcome = 'migrated' | 'already' | 'skipped' | 'would-migrate';

const exists = (p: string): Promise<boolean> =>
  access(p).then(
    () => true,
    () => false,
  );

class Skip extends Error {}

export async function migrateFiles(options: MigrateFilesOptions): Promise<MigrateSummary> {
  const started = performance.now();
  const cwd = options.cwd ?? process.cwd();
  const journalPath = resolve(cwd, options.journal ?? DEFAULT_JOURNAL);
  const removeSource = options.removeSource === true;
  const dryRun = options.dryRun === true;
  const from = kmsRecipient(options.from);
  const to = kmsRecipient(options.to);
  if (from.id === to.id) throw new KeyportError('InvalidArgument', '--from and --to name the same key');
  const exclude = (p: string): boolean => p === journalPath || p.endsWith(TEMP_SUFFIX);
  const files =
    typeof options.target === 'string'
      ? await expandTarget(options.target, cwd, exclude)
      : options.target.map((f) => resolve(cwd, f)).filter((f) => !exclude(f));

  const journal = dryRun
    ? undefined
    : await Journal.open(journalPath, {
        journal: 'keyport-migrate/1',
        from: options.from,
        to: options.to,
        removeSource,
      });
  const counts = { total: files.length, done: 0, migrated: 0, alreadyDone: 0, skipped: 0, failed: 0 };
  let wouldMigrate = 0;
  const failures: Array<{ file: string; code: ErrorCode; message: string }> = [];
  const skippedFiles: Array<{ file: string; reason: string }> = [];
  const signal = options.signal;
  const counter = new CallCounter(options.from, options.to);
  const keys = counter.wrap(options.keys);
  const batcher = options.batch === false ? undefined : batchRecipientFor(options);
  // The recipient that wraps for --to, and the one the verification trusts: the same key.
  const toRecipient: Recipient | string = batcher ?? options.to;
  const env = { keys, ...(signal !== undefined ? { signal } : {}) };
  const record = async (f: string, s: Parameters<Journal['record']>[1], why?: string): Promise<void> => {
    await journal?.record(f, s, why);
  };

  /** Writes the rewrapped message to the temp file, fsynced, with the original's mode. */
  const rewrapToTemp = async (file: string, tmp: string, add: boolean): Promise<void> => {
    const mode = (await stat(file)).mode & 0o777;
    const h = await open(tmp, 'w', mode);
    try {
      const out = rewrapStream(createReadStream(file), {
        trust: [options.from],
        keys,
        add: add ? [toRecipient] : [],
        remove: removeSource ? [options.from] : [],
        ...(signal !== undefined ? { signal } : {}),
      });
      for await (const chunk of out) await h.write(chunk);
      await h.sync();
    } finally {
      await h.close();
    }
  };

  /** The new file must open with --to alone: every frame tag and the key commitment verify. */
  const verify = async (tmp: string): Promise<void> => {
    for await (const _ of openStream(createReadStream(tmp), { trust: [toRecipient], ...env })) {
      // frames are verified as they are read; nothing is kept
    }
  };

  const replace = async (file: string, tmp: string): Promise<void> => {
    await rename(tmp, file);
    await syncDir(dirname(file));
    await record(file, 'replaced');
  };

  const fresh = async (file: string, tmp: string): Promise<Outcome> => {
    await unlink(tmp).catch(() => undefined);
    const peeked = await peekMessage(file);
    if (peeked.kind !== 'envelope') throw new Skip('not an envelope message');
    if (peeked.version !== 2) throw new Skip('format v1 message: rewrap writes v2 only; reseal it');
    const hasFrom = peeked.edks.some((e) => from.matches(e));
    const hasTo = peeked.edks.some((e) => to.matches(e));
    if (!hasFrom) {
      if (hasTo) return 'already';
      throw new Skip('not sealed for --from');
    }
    if (hasTo && !removeSource) return 'already';
    if (dryRun) return 'would-migrate';
    await record(file, 'pending');
    await rewrapToTemp(file, tmp, !hasTo);
    await record(file, 'rewrapped');
    await verify(tmp);
    await record(file, 'verified');
    await replace(file, tmp);
    return 'migrated';
  };

  const migrateOne = async (file: string): Promise<Outcome> => {
    const tmp = `${file}${TEMP_SUFFIX}`;
    const entry = journal?.state(file);
    switch (entry?.s) {
      case 'replaced':
        return 'already';
      case 'skipped':
        throw new Skip(entry.why ?? 'skipped by an earlier run');
      case 'verified':
        if (await exists(tmp)) {
          await replace(file, tmp);
          return 'migrated';
        }
        // The rename happened before the crash; confirm the file is the new one.
        {
          const now = await peekMessage(file);
          if (now.kind === 'envelope' && now.edks.some((e) => to.matches(e))) {
            await record(file, 'replaced');
            return 'migrated';
          }
        }
        return fresh(file, tmp);
      case 'rewrapped':
        if (await exists(tmp)) {
          await verify(tmp);
          await record(file, 'verified');
          await replace(file, tmp);
          return 'migrated';
        }
        return fresh(file, tmp);
      default:
        return fresh(file, tmp);
    }
  };

  try {
    await forEachBounded(
      files,
      options.jobs ?? 8,
      async (file) => {
        try {
          const outcome = await migrateOne(file);
          if (outcome === 'migrated') counts.migrated++;
          else if (outcome === 'already') counts.alreadyDone++;
          else if (outcome === 'would-migrate') wouldMigrate++;
        } catch (e) {
          if (e instanceof Skip) {
            counts.skipped++;
            skippedFiles.push({ file, reason: e.message });
            if (journal?.state(file)?.s !== 'skipped') await record(file, 'skipped', e.message);
          } else {
            const err = toKeyportError(e);
            if (err.code === 'Aborted' && signal?.aborted === true) throw err;
            counts.failed++;
            failures.push({ file, code: err.code, message: err.message });
            await record(file, 'failed', err.code).catch(() => undefined);
          }
        }
        counts.done++;
        options.onProgress?.({ ...counts });
      },
      signal,
    );
  } finally {
    await journal?.close();
  }
  const durationMs = Math.round(performance.now() - started);
  if (batcher !== undefined) {
    counter.add('to', 'encryptBatch', batcher.stats.encryptRequests);
    counter.add('to', 'decryptBatch', batcher.stats.decryptRequests);
  }
  const per = (n: number): number =>
    counts.migrated === 0 ? 0 : Math.round((n / counts.migrated) * 1000) / 1000;
  const calls: MigrateCalls = {
    byOperation: Object.fromEntries([...counter.counts].sort()),
    perFile: per(counter.total()),
    wrapPerFile: per(counter.total('to', ['encrypt', 'encryptBatch'])),
    ...(batcher !== undefined && batcher.stats.largestBatch > 0
      ? { largestBatch: batcher.stats.largestBatch }
      : {}),
  };
  return {
    ...counts,
    dryRun,
    wouldMigrate,
    durationMs,
    filesPerSecond: durationMs === 0 ? counts.done : Math.round((counts.done / durationMs) * 100_000) / 100,
    journal: journal === undefined ? undefined : journalPath,
    failures,
    skippedFiles,
    calls,
  };
}

/** A batching recipient for `to` when its provider has a batch API (Vault/OpenBao transit). */
function batchRecipientFor(o: MigrateFilesOptions): TransitBatchRecipient | undefined {
  if (keyUriScheme(o.to) !== 'hcvault') return undefined;
  const lookup = (o.keys as Partial<{ provider(uri: string): unknown }>).provider;
  if (typeof lookup !== 'function') return undefined;
  let provider: unknown;
  try {
    provider = lookup.call(o.keys, o.to);
  } catch {
    return undefined;
  }
  if (!isBatchingProvider(provider)) return undefined;
  // Through the client: its retry policy and audit sinks apply to the batched calls too.
  return new TransitBatchRecipient({
    uri: o.to,
    keys: o.keys,
    ...(o.signal !== undefined ? { signal: o.signal } : {}),
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
  });
}

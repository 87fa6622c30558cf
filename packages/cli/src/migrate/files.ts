/**
 * `migrateFiles`: moves envelope files from one key to another by rewrapping their headers
 * (the body is copied byte for byte), verifying that each new file opens with the new key
 * alone, and only then renaming it over the original.
 *
 * Safe under misuse, not only under crashes:
 * - One run per journal: the journal's lock (lock.ts) is taken before anything is touched;
 *   a second run exits with MigrationLocked (exit 7).
 * - The file is the truth: each run reads every file's header; a file naming --to (and, with
 *   --remove-source, no longer --from) is done, whatever the journal says, and a file restored
 *   from a backup (naming --from again) is migrated again. The journal records progress.
 * - Every attempt writes its own temp file (O_EXCL, a name unique to the run) from one open
 *   descriptor of the original, and renames it only if the original is still the file it read:
 *   runs with different journals, kills and restarts can interleave without a 0-byte, partial
 *   or double-wrapped file.
 * - --to is proven usable before the first file (a probe wrap and unwrap), --from reachable.
 * - Symlinks are not followed unless `followSymlinks`; every skipped file is reported with why.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { type FileHandle, lstat, open, realpath, rename, unlink } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import {
  type ErrorCode,
  type KeyOperations,
  KeyportError,
  keyUriScheme,
  toKeyportError,
} from '@keyport/core';
import { kmsRecipient, openStream, type Recipient, rewrapStream } from '@keyport/envelope';
import { findCliError, isErrno } from '../cli-errors.js';
import { abortable } from '../files/abortable.js';
import { writeAll } from '../files/output-file.js';
import { syncDir } from '../files/sync-dir.js';
import { trackTemp, untrackTemp } from '../files/temps.js';
import { isBatchingProvider, TransitBatchRecipient } from './batch-recipient.js';
import { CallCounter } from './call-counter.js';
import { peekHandle } from './header-peek.js';
import { Journal } from './journal.js';
import { acquireJournalLock } from './lock.js';
import { forEachBounded } from './pool.js';
import { expandTarget, type SkippedFile } from './sources.js';

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
  /** Follow symbolic links (to files and directories); default: report them as skipped. */
  readonly followSymlinks?: boolean;
  /** Take over the journal's lock even when its holder may still run (another host). */
  readonly breakLock?: boolean;
  /** Notes for the user (a lock taken over). */
  readonly onNote?: (text: string) => void;
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
  /** The run was stopped by its signal before every file was done. */
  readonly interrupted: boolean;
  readonly durationMs: number;
  readonly filesPerSecond: number;
  readonly journal: string | undefined;
  readonly failures: ReadonlyArray<{
    readonly file: string;
    readonly code: ErrorCode | string;
    readonly message: string;
  }>;
  readonly skippedFiles: ReadonlyArray<{ readonly file: string; readonly reason: string }>;
  readonly calls: MigrateCalls;
}

type Outcome = 'migrated' | 'already' | 'would-migrate';

class Skip extends Error {}

/** Reads the whole file through `h` from offset 0 (the descriptor the header was peeked from). */
async function* readFrom(h: FileHandle): AsyncGenerator<Uint8Array> {
  const buf = Buffer.allocUnsafe(256 * 1024);
  let position = 0;
  for (;;) {
    const { bytesRead } = await h.read(buf, 0, buf.length, position);
    if (bytesRead === 0) return;
    position += bytesRead;
    yield Buffer.from(buf.subarray(0, bytesRead));
  }
}

const sameFile = (a: Stats, b: Stats): boolean => a.dev === b.dev && a.ino === b.ino;

/**
 * Before the first file: --to must wrap and unwrap (a random data key round-trips), and --from
 * must be reachable. A missing --from key, or one the provider cannot reach, stops the run;
 * a --from that refuses describe (permissions for decrypt only, or no describe) does not.
 */
async function probe(keys: KeyOperations, from: string, to: string, signal?: AbortSignal): Promise<void> {
  const dataKey = randomBytes(32);
  const context = { 'keyport-migrate': 'probe' };
  const toRecipient = kmsRecipient(to);
  const env = { keys, ...(signal !== undefined ? { signal } : {}) };
  try {
    const edk = await toRecipient.wrap(dataKey, context, env);
    const back = await toRecipient.unwrap(edk, context, env);
    if (back.length !== dataKey.length || !timingSafeEqual(back, dataKey)) {
      throw new KeyportError('Integrity', 'the --to key did not return the probe data key');
    }
  } catch (e) {
    const err = toKeyportError(e);
    throw new KeyportError(
      err.code,
      `--to cannot be used (probe wrap and unwrap failed before any file was touched): ${err.message}`,
      {
        ...(err.keyUri !== undefined ? { keyUri: err.keyUri } : {}),
        ...(err.provider !== undefined ? { provider: err.provider } : {}),
        cause: err,
      },
    );
  } finally {
    dataKey.fill(0);
  }
  try {
    await keys.describeKey(from, signal !== undefined ? { signal } : {});
  } catch (e) {
    const err = toKeyportError(e);
    if (['NotFound', 'Unavailable', 'Timeout', 'InvalidArgument'].includes(err.code)) {
      throw new KeyportError(
        err.code,
        `--from cannot be reached (checked before any file was touched): ${err.message}`,
        {
          ...(err.keyUri !== undefined ? { keyUri: err.keyUri } : {}),
          cause: err,
        },
      );
    }
  }
}

export async function migrateFiles(options: MigrateFilesOptions): Promise<MigrateSummary> {
  const started = performance.now();
  const cwd = options.cwd ?? process.cwd();
  const journalPath = resolve(cwd, options.journal ?? DEFAULT_JOURNAL);
  const removeSource = options.removeSource === true;
  const dryRun = options.dryRun === true;
  const from = kmsRecipient(options.from);
  const to = kmsRecipient(options.to);
  if (from.id === to.id) throw new KeyportError('InvalidArgument', '--from and --to name the same key');
  const exclude = (p: string): boolean =>
    p === journalPath ||
    p.startsWith(`${journalPath}.lock`) ||
    p.endsWith(TEMP_SUFFIX) ||
    p.endsWith('.keyport.tmp');
  const signal = options.signal;

  // Nothing is touched before the lock is held and both keys answered.
  const lock = dryRun
    ? undefined
    : await acquireJournalLock(journalPath, {
        ...(options.breakLock === true ? { breakLock: true } : {}),
        ...(options.onNote !== undefined ? { onNote: options.onNote } : {}),
      });
  let journal: Journal | undefined;
  try {
    const counter = new CallCounter(options.from, options.to);
    const keys = counter.wrap(options.keys);
    const batcher = options.batch === false ? undefined : batchRecipientFor(options);
    // The recipient that wraps for --to, and the one the verification trusts: the same key.
    const toRecipient: Recipient = batcher ?? kmsRecipient(options.to);
    await probe(options.keys, options.from, options.to, signal);

    const sources =
      typeof options.target === 'string'
        ? await expandTarget(options.target, cwd, {
            exclude,
            ...(options.followSymlinks === true ? { followSymlinks: true } : {}),
          })
        : {
            files: [...new Set(options.target.map((f) => resolve(cwd, f)))].filter((f) => !exclude(f)).sort(),
            skipped: [] as SkippedFile[],
          };
    const files = sources.files;

    journal = dryRun
      ? undefined
      : await Journal.open(journalPath, {
          journal: 'keyport-migrate/1',
          from: options.from,
          to: options.to,
          removeSource,
        });
    // Temps a killed run of this journal left behind (the lock says that run is gone).
    for (const tmp of journal?.leftoverTemps() ?? []) await unlink(tmp).catch(() => undefined);

    const counts = {
      total: files.length + sources.skipped.length,
      done: sources.skipped.length,
      migrated: 0,
      alreadyDone: 0,
      skipped: sources.skipped.length,
      failed: 0,
    };
    let wouldMigrate = 0;
    const failures: Array<{ file: string; code: ErrorCode | string; message: string }> = [];
    const skippedFiles: SkippedFile[] = [...sources.skipped];
    const env = { keys, ...(signal !== undefined ? { signal } : {}) };
    const runId = randomBytes(6).toString('hex');
    const record = async (
      f: string,
      st: Parameters<Journal['record']>[1],
      extra?: Parameters<Journal['record']>[2],
    ): Promise<void> => {
      await journal?.record(f, st, extra);
    };

    /** The new file must open with --to alone: every frame tag and the key commitment verify. */
    const verify = async (tmp: string): Promise<void> => {
      const h = await open(tmp, 'r');
      try {
        for await (const _ of openStream(abortable(readFrom(h), signal), { trust: [toRecipient], ...env })) {
          // frames are verified as they are read; nothing is kept
        }
      } finally {
        await h.close();
      }
    };

    /**
     * A file whose header says it is migrated. When this journal had started it (a run killed
     * between the rename and its record), the journal is brought in line: `replaced`.
     */
    const done = async (file: string): Promise<Outcome> => {
      const last = journal?.state(file)?.s;
      if (last !== undefined && last !== 'replaced' && last !== 'skipped') await record(file, 'replaced');
      return 'already';
    };

    /** One attempt on one file, read through one descriptor; `attempt` bounds retries after a race. */
    const migrateOne = async (path: string, attempt = 0): Promise<Outcome> => {
      let file = path;
      let lst: Stats;
      try {
        lst = await lstat(file);
      } catch (e) {
        throw new Skip(
          isErrno(e) && e.code === 'ENOENT'
            ? 'does not exist'
            : `unreadable (${isErrno(e) ? e.code : 'error'})`,
        );
      }
      if (lst.isSymbolicLink()) {
        if (options.followSymlinks !== true)
          throw new Skip('symbolic link (not followed; pass --follow-symlinks)');
        file = await realpath(file).catch(() => {
          throw new Skip('symbolic link to nothing');
        });
        lst = await lstat(file);
      }
      if (lst.isDirectory()) throw new Skip('a directory');
      if (!lst.isFile()) throw new Skip('not a regular file');
      let h: FileHandle;
      try {
        // O_NOFOLLOW and O_NONBLOCK: a file swapped for a symlink or a FIFO since the lstat
        // above is neither followed nor waited on; the fstat below then refuses it.
        h = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      } catch (e) {
        const code = isErrno(e) ? e.code : undefined;
        if (code === 'ELOOP') throw new Skip('symbolic link (not followed; pass --follow-symlinks)');
        throw new Skip(
          code === 'EACCES' || code === 'EPERM'
            ? 'unreadable: permission denied'
            : `unreadable (${code ?? 'error'})`,
        );
      }
      const tmp = `${file}.${runId}${TEMP_SUFFIX}`;
      let tmpMade = false;
      try {
        const original = await h.stat();
        if (!original.isFile()) throw new Skip('not a regular file');
        const peeked = await peekHandle(h);
        if (peeked.kind !== 'envelope') throw new Skip('not an envelope message');
        if (peeked.version !== 2) throw new Skip('format v1 message: rewrap writes v2 only; reseal it');
        const hasFrom = peeked.edks.some((e) => from.matches(e));
        const hasTo = peeked.edks.some((e) => to.matches(e));
        if (!hasFrom) {
          if (hasTo) return done(file);
          throw new Skip('not sealed for --from');
        }
        if (hasTo && !removeSource) return done(file);
        if (dryRun) return 'would-migrate';
        await record(file, 'pending', { tmp });
        const out = await open(tmp, 'wx', original.mode & 0o7777);
        tmpMade = true;
        trackTemp(tmp);
        try {
          const rewrapped = rewrapStream(abortable(readFrom(h), signal), {
            trust: [options.from],
            keys,
            add: hasTo ? [] : [toRecipient],
            remove: removeSource ? [options.from] : [],
            ...(signal !== undefined ? { signal } : {}),
          });
          for await (const chunk of rewrapped) await writeAll(out, chunk);
          await out.sync();
        } finally {
          await out.close();
        }
        await record(file, 'rewrapped');
        await verify(tmp);
        await record(file, 'verified');
        // Replace only the file we read: another run may have replaced it meanwhile.
        const now = await lstat(file).catch(() => undefined);
        if (now === undefined || !sameFile(now, original)) {
          await unlink(tmp).catch(() => undefined);
          tmpMade = false;
          if (attempt >= 2)
            throw new KeyportError('Aborted', 'the file kept changing during the migration; run again');
          await h.close();
          return migrateOne(path, attempt + 1);
        }
        await rename(tmp, file);
        tmpMade = false;
        await syncDir(dirname(file));
        await record(file, 'replaced');
        return 'migrated';
      } finally {
        if (tmpMade) await unlink(tmp).catch(() => undefined);
        untrackTemp(tmp);
        await h.close().catch(() => undefined);
      }
    };

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
            if (journal?.state(file)?.s !== 'skipped')
              await record(file, 'skipped', { why: e.message }).catch(() => undefined);
          } else if (signal?.aborted === true) {
            // Interrupted: the file is left as it was (its temp is gone); the next run redoes it.
            return;
          } else {
            const cli = findCliError(e);
            const err = cli ?? toKeyportError(e);
            counts.failed++;
            failures.push({ file, code: err.code, message: err.message });
            await record(file, 'failed', { why: err.code }).catch(() => undefined);
          }
        }
        counts.done++;
        options.onProgress?.({ ...counts });
      },
      signal,
    );

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
      interrupted: signal?.aborted === true,
      durationMs,
      filesPerSecond: durationMs === 0 ? counts.done : Math.round((counts.done / durationMs) * 100_000) / 100,
      journal: journal === undefined ? undefined : journalPath,
      failures,
      skippedFiles,
      calls,
    };
  } finally {
    await journal?.close().catch(() => undefined);
    await lock?.release();
  }
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

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
 *   or double-wrapped file (file-step.ts).
 * - --to is proven usable before the first file (a probe wrap and unwrap), --from reachable.
 * - Symlinks are not followed unless `followSymlinks`; every skipped file is reported with why.
 *
 * This module only orders the run: plan (plan.ts), lock, probe, journal (run-journal.ts), each
 * file's step (file-step.ts) with --jobs in flight, and the report (tally.ts).
 */
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import {
  type EncryptionContext,
  type KeyOperations,
  KeyportError,
  keyUriScheme,
  toEncryptionContext,
} from '@keyport/core';
import { kmsRecipient } from '@keyport/envelope';
import { quotePath } from '../cli-errors.js';
import { sweepOutputTempsIn } from '../files/output-temps.js';
import { isBatchingProvider, TransitBatchRecipient } from './batch-recipient.js';
import { CallCounter } from './call-counter.js';
import { coalescedDirSync } from './dir-sync.js';
import { type FileStepContext, migrateFile } from './file-step.js';
import { acquireJournalLock } from './lock.js';
import { journalPathOf, planFiles } from './plan.js';
import { forEachBounded } from './pool.js';
import { probeKeys } from './probe.js';
import { RunJournal } from './run-journal.js';
import { callsOf, Tally } from './tally.js';
import { type MigrateFilesOptions, type MigrateSummary, SkipFile } from './types.js';

export { DEFAULT_JOURNAL, TEMP_SUFFIX } from './plan.js';
export type { MigrateCalls, MigrateFilesOptions, MigrateProgress, MigrateSummary } from './types.js';

export function migrateFiles(options: MigrateFilesOptions): Promise<MigrateSummary> {
  return runMigration(options, async () => options.keys);
}

/**
 * `migrateFiles` with the keys made by `keysOf` only once the target is known to name something:
 * the CLI builds its providers there (opening a keystore, a PKCS#11 session), so a glob that
 * matches nothing is reported (exit 8) before any provider is built or called. The journal's
 * lock is taken before the target is read: a run over a tree another run holds exits 7 at once,
 * not after walking every file (so a glob that matches nothing under a held lock is exit 7 too).
 */
export async function runMigration(
  given: Omit<MigrateFilesOptions, 'keys'>,
  keysOf: () => Promise<KeyOperations>,
): Promise<MigrateSummary> {
  const started = performance.now();
  const cwd = given.cwd ?? process.cwd();
  const journalPath = journalPathOf(cwd, given.journal);
  const removeSource = given.removeSource === true;
  const dryRun = given.dryRun === true;
  const from = kmsRecipient(given.from);
  const to = kmsRecipient(given.to);
  if (from.id === to.id) throw new KeyportError('InvalidArgument', '--from and --to name the same key');
  // Checked before the lock: a malformed map would otherwise fail every file, one by one.
  const reproducedContext = reproducedOf(given.reproducedContext);
  const signal = given.signal;
  // The lock first: its path depends on the journal's alone, never on what the walk finds, and
  // a second run over a tree of a million files must not walk it to learn that it is held.
  // Taking it writes only the lock beside the journal; released on every exit below.
  const lock = dryRun
    ? undefined
    : await acquireJournalLock(journalPath, {
        ...(given.breakLock === true ? { breakLock: true } : {}),
        ...(given.onNote !== undefined ? { onNote: given.onNote } : {}),
      });
  let journal = RunJournal.none();
  try {
    // What the run works on is read next (reading only; the journal, its lock and temps are
    // excluded by name): a target that names nothing is a mistake to report before the keys
    // are made or a provider called, not after a probe of every key. Ctrl-C stops the walk.
    const plan = await planFiles(given.target, cwd, journalPath, given.followSymlinks === true, signal);
    const options: MigrateFilesOptions = { ...given, keys: await keysOf() };

    // Nothing is written (but the lock) before both keys answered.
    const counter = new CallCounter(options.from, options.to);
    const batcher = options.batch === false ? undefined : batchRecipientFor(options);
    await probeKeys(options.keys, options.from, options.to, signal);
    if (!dryRun) {
      journal = await RunJournal.open(journalPath, {
        journal: 'keyport-migrate/1',
        from: options.from,
        to: options.to,
        removeSource,
      });
    }
    if (!dryRun) {
      // Temps of `encrypt`/`decrypt`/`rewrap -o` killed beside these files (a `decrypt` one
      // holds plaintext): removed once their writer is known to be gone (output-temps.ts).
      const dirs = new Set([...plan.files, ...plan.skipped.map((s) => s.file)].map((f) => dirname(f)));
      for (const dir of dirs) {
        for (const left of await sweepOutputTempsIn(dir)) {
          options.onNote?.(`removed ${quotePath(left)}, a temp file left by a keyport process that is gone`);
        }
      }
    }
    const ctx: FileStepContext = {
      keys: counter.wrap(options.keys),
      from,
      to,
      // The recipient that wraps for --to, and the one the verification trusts: the same key.
      toRecipient: batcher ?? to,
      removeSource,
      dryRun,
      followSymlinks: options.followSymlinks === true,
      named: plan.named,
      signal,
      runId: randomBytes(6).toString('hex'),
      syncDir: coalescedDirSync(),
      journal,
      reproducedContext,
    };
    const tally = new Tally(plan.files.length, plan.skipped);
    await forEachBounded(
      plan.files,
      options.jobs ?? 8,
      async (file) => {
        try {
          tally.outcome(await migrateFile(ctx, file));
        } catch (e) {
          if (e instanceof SkipFile) {
            tally.skip(file, e.message);
            await journal.skipped(file, e.message);
          } else if (signal?.aborted === true) {
            // Interrupted: the file is left as it was (its temp is gone); the next run redoes it.
            return;
          } else {
            await journal.failed(file, tally.fail(file, e));
          }
        }
        // Counted whether or not anyone listens: the summary's `done` is this count.
        const progress = tally.settled();
        options.onProgress?.(progress);
      },
      signal,
    );
    return tally.summary({
      dryRun,
      interrupted: signal?.aborted === true,
      durationMs: Math.round(performance.now() - started),
      journal: journal.path,
      calls: callsOf(counter, batcher, tally.migrated),
    });
  } finally {
    await journal.close();
    await lock?.release();
  }
}

/** The reproduced pairs as a checked context; none given (or an empty map): undefined. */
function reproducedOf(given: EncryptionContext | undefined): EncryptionContext | undefined {
  if (given === undefined) return undefined;
  const context = toEncryptionContext(given, 'reproducedContext');
  return Object.keys(context).length > 0 ? context : undefined;
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

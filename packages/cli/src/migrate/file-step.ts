/**
 * One file's migration step, read through one descriptor: open the file without following a
 * link it became, decide from its header, write the rewrapped copy to a temp file of this run,
 * prove the copy opens with --to alone, and rename it over the original only if the original
 * is still the file that was read. Each step is journalled before the next starts.
 */
import { constants, type Stats } from 'node:fs';
import { type FileHandle, lstat, open, realpath, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type KeyOperations, KeyportError } from '@keyport/core';
import { openStream, type Recipient, rewrapStream } from '@keyport/envelope';
import { isErrno } from '../cli-errors.js';
import { abortable } from '../files/abortable.js';
import { writeAll } from '../files/output-file.js';
import { syncDir } from '../files/sync-dir.js';
import { trackTemp, untrackTemp } from '../files/temps.js';
import { type Peeked, peekHandle } from './header-peek.js';
import { TEMP_SUFFIX } from './plan.js';
import type { RunJournal } from './run-journal.js';
import { type FileOutcome, SkipFile } from './types.js';

export interface FileStepContext {
  /** The run's client (counted: every provider call it makes is in the summary). */
  readonly keys: KeyOperations;
  readonly fromUri: string;
  /** Match EDKs in a header: which keys a file is sealed for. */
  readonly from: Recipient;
  readonly to: Recipient;
  /** Wraps the data keys under --to and is the only key the verification trusts. */
  readonly toRecipient: Recipient;
  readonly removeSource: boolean;
  readonly dryRun: boolean;
  readonly followSymlinks: boolean;
  readonly signal: AbortSignal | undefined;
  /** Unique to the run: names its temp files. */
  readonly runId: string;
  readonly journal: RunJournal;
}

/** How many times a file that changed under the run is tried again before it fails. */
const RETRIES_AFTER_RACE = 2;

/** Migrates one file (or finds it done, or would in a dry run); a skip is thrown as SkipFile. */
export async function migrateFile(ctx: FileStepContext, path: string, attempt = 0): Promise<FileOutcome> {
  const { file, handle: h } = await openSource(path, ctx.followSymlinks);
  const tmp = `${file}.${ctx.runId}${TEMP_SUFFIX}`;
  let tmpMade = false;
  try {
    const original = await h.stat();
    if (!original.isFile()) throw new SkipFile('not a regular file');
    const decision = decide(await peekHandle(h), ctx);
    if (decision === 'already') {
      await ctx.journal.alreadyDone(file);
      return 'already';
    }
    if (ctx.dryRun) return 'would-migrate';
    await ctx.journal.record(file, 'pending', { tmp });
    const out = await open(tmp, 'wx', original.mode & 0o7777);
    tmpMade = true;
    trackTemp(tmp);
    await writeRewrapped(h, out, decision.addTo, ctx);
    await ctx.journal.record(file, 'rewrapped');
    await verifyOpensWithTo(tmp, ctx);
    await ctx.journal.record(file, 'verified');
    if (!(await replaceIfUnchanged(file, tmp, original))) {
      tmpMade = false;
      if (attempt >= RETRIES_AFTER_RACE)
        throw new KeyportError('Aborted', 'the file kept changing during the migration; run again');
      await h.close();
      return migrateFile(ctx, path, attempt + 1);
    }
    tmpMade = false;
    await ctx.journal.record(file, 'replaced');
    return 'migrated';
  } finally {
    if (tmpMade) await unlink(tmp).catch(() => undefined);
    untrackTemp(tmp);
    await h.close().catch(() => undefined);
  }
}

/**
 * What the header asks for: `already` (sealed for --to and, with --remove-source, no longer for
 * --from), or a rewrap that adds --to unless the file already has it. Anything else is a skip.
 */
export function decide(
  peeked: Peeked,
  o: { readonly from: Recipient; readonly to: Recipient; readonly removeSource: boolean },
): 'already' | { readonly addTo: boolean } {
  if (peeked.kind !== 'envelope') throw new SkipFile('not an envelope message');
  if (peeked.version !== 2) throw new SkipFile('format v1 message: rewrap writes v2 only; reseal it');
  const hasFrom = peeked.edks.some((e) => o.from.matches(e));
  const hasTo = peeked.edks.some((e) => o.to.matches(e));
  if (!hasFrom) {
    if (hasTo) return 'already';
    throw new SkipFile('not sealed for --from');
  }
  if (hasTo && !o.removeSource) return 'already';
  return { addTo: !hasTo };
}

/**
 * Opens the file to migrate: a symbolic link only when links are followed (then its target),
 * never a directory, FIFO or device, and never a link or FIFO swapped in after the check.
 */
async function openSource(
  path: string,
  followSymlinks: boolean,
): Promise<{ file: string; handle: FileHandle }> {
  let file = path;
  let lst: Stats;
  try {
    lst = await lstat(file);
  } catch (e) {
    throw new SkipFile(
      isErrno(e) && e.code === 'ENOENT' ? 'does not exist' : `unreadable (${isErrno(e) ? e.code : 'error'})`,
    );
  }
  if (lst.isSymbolicLink()) {
    if (!followSymlinks) throw new SkipFile('symbolic link (not followed; pass --follow-symlinks)');
    file = await realpath(file).catch(() => {
      throw new SkipFile('symbolic link to nothing');
    });
    lst = await lstat(file);
  }
  if (lst.isDirectory()) throw new SkipFile('a directory');
  if (!lst.isFile()) throw new SkipFile('not a regular file');
  try {
    // O_NOFOLLOW and O_NONBLOCK: a file swapped for a symlink or a FIFO since the lstat above
    // is neither followed nor waited on; the caller's fstat then refuses it.
    const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    return { file, handle };
  } catch (e) {
    const code = isErrno(e) ? e.code : undefined;
    if (code === 'ELOOP') throw new SkipFile('symbolic link (not followed; pass --follow-symlinks)');
    throw new SkipFile(
      code === 'EACCES' || code === 'EPERM'
        ? 'unreadable: permission denied'
        : `unreadable (${code ?? 'error'})`,
    );
  }
}

/** Writes the rewrapped message read through `h` to `out` (the run's temp file), syncs and closes it. */
async function writeRewrapped(
  h: FileHandle,
  out: FileHandle,
  addTo: boolean,
  ctx: FileStepContext,
): Promise<void> {
  try {
    const rewrapped = rewrapStream(abortable(readFrom(h), ctx.signal), {
      trust: [ctx.fromUri],
      keys: ctx.keys,
      add: addTo ? [ctx.toRecipient] : [],
      remove: ctx.removeSource ? [ctx.fromUri] : [],
      ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}),
    });
    for await (const chunk of rewrapped) await writeAll(out, chunk);
    await out.sync();
  } finally {
    await out.close();
  }
}

/** The new file must open with --to alone: every frame tag and the key commitment verify. */
async function verifyOpensWithTo(tmp: string, ctx: FileStepContext): Promise<void> {
  const h = await open(tmp, 'r');
  try {
    const opened = openStream(abortable(readFrom(h), ctx.signal), {
      trust: [ctx.toRecipient],
      keys: ctx.keys,
      ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}),
    });
    for await (const _ of opened) {
      // frames are verified as they are read; nothing is kept
    }
  } finally {
    await h.close();
  }
}

/**
 * Renames `tmp` over `file` only if `file` is still the one that was read (another run may have
 * replaced it meanwhile); otherwise removes `tmp`. Returns whether it replaced.
 */
async function replaceIfUnchanged(file: string, tmp: string, original: Stats): Promise<boolean> {
  const now = await lstat(file).catch(() => undefined);
  if (now === undefined || !sameFile(now, original)) {
    await unlink(tmp).catch(() => undefined);
    return false;
  }
  await rename(tmp, file);
  await syncDir(dirname(file));
  return true;
}

const sameFile = (a: Stats, b: Stats): boolean => a.dev === b.dev && a.ino === b.ino;

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

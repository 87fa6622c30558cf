/**
 * One file's migration step, read through one descriptor: open the file without following a
 * link it became, decide from its header, write the rewrapped copy to a temp file of this run,
 * prove the copy opens with --to alone, and rename it over the original only if the original
 * is still the file that was read. The temp file's name is journalled (fsynced) before the
 * file exists; the later steps are journalled in order, their fsyncs shared (journal.ts). The
 * provider calls and fsyncs a file waits on overlap where order allows: the temp file's fsync
 * with its verification, the directory's fsync with the `replaced` line.
 */
import { constants, type Stats } from 'node:fs';
import { type FileHandle, lstat, open, realpath, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type EncryptionContext, type KeyOperations, KeyportError } from '@keyport/core';
import { openStream, type Recipient, rewrapStream } from '@keyport/envelope';
import { CliError, fileError, isErrno, quotePath } from '../cli-errors.js';
import { abortable } from '../files/abortable.js';
import { unchangedSince } from '../files/identity.js';
import { writeChunks } from '../files/output-file.js';
import { trackTemp, untrackTemp } from '../files/temps.js';
import { type Peeked, peekHandle, peekPrefix } from './header-peek.js';
import { migrationTempFor } from './plan.js';
import type { RunJournal } from './run-journal.js';
import { type FileOutcome, SkipFile } from './types.js';

export interface FileStepContext {
  /** The run's client (counted: every provider call it makes is in the summary). */
  readonly keys: KeyOperations;
  /** --from: matches the EDKs a file is sealed for, and unwraps the one the rewrap trusts. */
  readonly from: Recipient;
  /** --to as a matcher of EDKs. */
  readonly to: Recipient;
  /** Wraps the data keys under --to and is the only key the verification trusts. */
  readonly toRecipient: Recipient;
  readonly removeSource: boolean;
  readonly dryRun: boolean;
  readonly followSymlinks: boolean;
  /**
   * The files were named one by one (a manifest, a list): one that does not exist fails
   * (FileNotFound) instead of being skipped. A file a walk found and that is gone by its step
   * was removed meanwhile: skipped, as before.
   */
  readonly named: boolean;
  readonly signal: AbortSignal | undefined;
  /** Unique to the run: names its temp files. */
  readonly runId: string;
  /** fsync of a directory after a rename in it (coalesced across files: dir-sync.ts). */
  readonly syncDir: (dir: string) => Promise<void>;
  readonly journal: RunJournal;
  /**
   * The pairs the files authenticate without storing them (--reproduced-context), or none.
   * Both the rewrap and the verification need them: the header's tag and every EDK are bound
   * to them, and the rewrap keeps them out of the new header as the old one did.
   */
  readonly reproducedContext: EncryptionContext | undefined;
}

/** The open option for `ctx`'s reproduced pairs (none: no option, as for a plain message). */
function reproduced(ctx: FileStepContext): { reproducedContext?: EncryptionContext } {
  return ctx.reproducedContext !== undefined ? { reproducedContext: ctx.reproducedContext } : {};
}

/** How many times a file that changed under the run is tried again before it fails. */
const RETRIES_AFTER_RACE = 2;

/** Migrates one file (or finds it done, or would in a dry run); a skip is thrown as SkipFile. */
export async function migrateFile(ctx: FileStepContext, path: string, attempt = 0): Promise<FileOutcome> {
  const { file, handle: h } = await openSource(path, ctx);
  const tmp = migrationTempFor(file, ctx.runId);
  let tmpMade = false;
  try {
    const original = await h.stat();
    if (!original.isFile()) throw new SkipFile('not a regular file');
    // One read serves the header and (for files up to READ_CHUNK) the whole rewrap.
    const head = await readAt(h, 0, Math.min(original.size, READ_CHUNK));
    const decision = decide(peekPrefix(head, head.length === original.size) ?? (await peekHandle(h)), ctx);
    if (decision === 'already') {
      await ctx.journal.alreadyDone(file);
      return 'already';
    }
    if (ctx.dryRun) return 'would-migrate';
    await ctx.journal.record(file, 'pending', { tmp });
    // Read and write: the copy is verified through the descriptor that wrote it.
    const out = await open(tmp, 'wx+', 0o600);
    tmpMade = true;
    trackTemp(tmp);
    try {
      await keepOwnerAndMode(out, file, original);
      const source = readRange(h, original.size, head);
      const written = await writeRewrapped(source, out, file, decision.addTo, ctx);
      ctx.journal.note(file, 'rewrapped');
      // The fsync and the verification overlap; the rename waits for both.
      await allOrFirstError([
        out.sync().catch((e: unknown) => {
          throw tempWriteError(e, file);
        }),
        verifyOpensWithTo(out, written, ctx),
      ]);
    } finally {
      await out.close();
    }
    ctx.journal.note(file, 'verified');
    if (!(await replaceIfUnchanged(file, tmp, original))) {
      tmpMade = false;
      if (attempt >= RETRIES_AFTER_RACE)
        throw new KeyportError('Aborted', 'the file kept changing during the migration; run again');
      await h.close();
      return migrateFile(ctx, path, attempt + 1);
    }
    tmpMade = false;
    // The directory's fsync makes the rename durable; the journal line is progress beside it.
    await allOrFirstError([ctx.syncDir(dirname(file)), ctx.journal.record(file, 'replaced')]);
    return 'migrated';
  } finally {
    if (tmpMade) await unlink(tmp).catch(() => undefined);
    untrackTemp(tmp);
    await h.close().catch(() => undefined);
  }
}

/**
 * The new file gets the original's owner and permission bits, set explicitly: the umask would
 * otherwise narrow them (a 0664 file becoming 0644 locks its group out), and a run as root would
 * hand every file to root (an application reading its 0600 files would lose them). Setuid,
 * setgid and sticky bits are dropped, as for any file keyport replaces (output-file.ts). A file
 * whose owner cannot be kept (another user's, migrated by someone who is not root) fails and is
 * left as it is: replacing it would silently make it the migrating user's.
 */
async function keepOwnerAndMode(out: FileHandle, file: string, original: Stats): Promise<void> {
  const uid = process.geteuid?.();
  const gid = process.getegid?.();
  if (uid !== undefined && (original.uid !== uid || original.gid !== gid)) {
    try {
      await out.chown(original.uid, original.gid);
    } catch (e) {
      throw new CliError(
        'FilePermission',
        `cannot migrate ${quotePath(file)}: its owner (uid ${original.uid}, gid ${original.gid}) cannot be kept by uid ${uid} (${isErrno(e) ? e.code : 'error'}); run as its owner or as root`,
        { path: file, cause: e },
      );
    }
  }
  await out.chmod(original.mode & 0o777);
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
async function openSource(path: string, ctx: FileStepContext): Promise<{ file: string; handle: FileHandle }> {
  const followSymlinks = ctx.followSymlinks;
  let file = path;
  let lst: Stats;
  try {
    lst = await lstat(file);
  } catch (e) {
    if (ctx.named && isMissing(e)) throw missingNamedFile(e, path, ctx);
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
    if (ctx.named && isMissing(e)) throw missingNamedFile(e, path, ctx);
    if (code === 'ELOOP') throw new SkipFile('symbolic link (not followed; pass --follow-symlinks)');
    throw new SkipFile(
      code === 'EACCES' || code === 'EPERM'
        ? 'unreadable: permission denied'
        : `unreadable (${code ?? 'error'})`,
    );
  }
}

/** The path names nothing: the file, or a directory on its way, does not exist. */
function isMissing(e: unknown): boolean {
  return isErrno(e) && (e.code === 'ENOENT' || e.code === 'ENOTDIR' || e.code === 'ENAMETOOLONG');
}

/**
 * A listed file that does not exist fails: the run cannot say it is under --to. That holds
 * when this journal recorded it replaced by an earlier run too (the file is the truth, not the
 * journal): it was moved or removed since, and the message says so.
 */
function missingNamedFile(e: unknown, path: string, ctx: FileStepContext): CliError {
  const error = fileError(e, path, 'cannot migrate the listed file');
  const earlier = ctx.journal.wasReplaced(path)
    ? '; the journal records it migrated by an earlier run, so it was moved or removed since: take it off the list'
    : '';
  return new CliError(error.code, `${error.message}${earlier}`, { path, cause: e });
}

/**
 * A failed write or fsync of `file`'s temp copy, as the file-system error it is (a full disk is
 * DiskFull, exit 13's code): a descriptor's errors carry no path, so they would otherwise be
 * reported as a provider's Internal failure. Names the file being migrated; the temp beside it is
 * removed.
 */
function tempWriteError(e: unknown, file: string): unknown {
  return isErrno(e) && !(e instanceof KeyportError)
    ? fileError(e, file, 'cannot write the migrated copy of')
    : e;
}

/** Writes the rewrapped message to `out`, the run's temp file (not synced here). Returns the bytes written. */
async function writeRewrapped(
  source: AsyncIterable<Uint8Array>,
  out: FileHandle,
  file: string,
  addTo: boolean,
  ctx: FileStepContext,
): Promise<number> {
  const rewrapped = rewrapStream(abortable(source, ctx.signal), {
    // Recipients built once per run, not a URI parsed again for every file.
    trust: [ctx.from],
    keys: ctx.keys,
    add: addTo ? [ctx.toRecipient] : [],
    remove: ctx.removeSource ? [ctx.from] : [],
    ...reproduced(ctx),
    ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}),
  });
  // The header and the frames arrive as separate chunks: written in batches, so a small file
  // takes one write call instead of one per chunk.
  return writeChunks(out, rewrapped, (e) => tempWriteError(e, file));
}

/**
 * The new file must open with --to alone: every frame tag and the key commitment verify. It is
 * read back from the file (through the descriptor that wrote it), not from memory.
 */
async function verifyOpensWithTo(out: FileHandle, size: number, ctx: FileStepContext): Promise<void> {
  const opened = openStream(abortable(readRange(out, size), ctx.signal), {
    trust: [ctx.toRecipient],
    keys: ctx.keys,
    ...reproduced(ctx),
    ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}),
  });
  for await (const _ of opened) {
    // frames are verified as they are read; nothing is kept
  }
}

/**
 * Renames `tmp` over `file` only if `file` is still the one that was read, unchanged: the same
 * inode (another run may have replaced it meanwhile) with the same size, change and modification
 * time (written in place since it was opened: the copy would drop those bytes; identity.ts);
 * otherwise removes `tmp`.
 * Returns whether it replaced.
 */
async function replaceIfUnchanged(file: string, tmp: string, original: Stats): Promise<boolean> {
  const now = await lstat(file).catch(() => undefined);
  if (now === undefined || !unchangedSince(now, original)) {
    await unlink(tmp).catch(() => undefined);
    return false;
  }
  await rename(tmp, file);
  return true;
}

/** Waits for every one of `work` (none is left running), then throws the first failure. */
async function allOrFirstError(work: ReadonlyArray<Promise<unknown>>): Promise<void> {
  const settled = await Promise.allSettled(work);
  const failed = settled.find((r) => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}

const READ_CHUNK = 256 * 1024;

/** Up to `length` bytes at `position` (fewer at the end of the file), in a buffer of their own. */
async function readAt(h: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await h.read(buf, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled === length ? buf : buf.subarray(0, filled);
}

/**
 * The file's first `size` bytes (its size when it was opened), in chunks of their own handed on
 * without a copy, starting with `head` when it was read already. A file that has since grown or
 * shrunk is refused at the rename (replaceIfUnchanged), not read differently here.
 */
async function* readRange(h: FileHandle, size: number, head?: Uint8Array): AsyncGenerator<Uint8Array> {
  let position = 0;
  if (head !== undefined && head.length > 0) {
    position = head.length;
    yield head;
  }
  while (position < size) {
    const chunk = await readAt(h, position, Math.min(READ_CHUNK, size - position));
    if (chunk.length === 0) return;
    position += chunk.length;
    yield chunk;
  }
}

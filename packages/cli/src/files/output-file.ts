/**
 * Writing a command's output file so that nothing is ever replaced by accident and a failure
 * never leaves a partial file:
 *
 * - The target must be absent, or a regular file the caller agreed to replace (`force`), or
 *   the input itself with `inPlace` (its permission bits, owner and group kept; setuid, setgid
 *   and sticky bits dropped, as cp(1) does; an owner that cannot be kept is refused). A device, FIFO, socket, directory or symlink is refused, before
 *   anything is written and again right before the rename. `plaintext` drops the group and
 *   other bits too, of a new file and of a replaced one.
 * - Bytes go to a temp file in the target's directory (created O_EXCL), fsynced, then put in
 *   place: hard-linked when nothing may be replaced (so a file that appeared meanwhile is not
 *   clobbered either), renamed otherwise; then the directory is fsynced.
 * - Right before the rename (identity.ts):
 *   - `inPlace`: the path must still be the input, unchanged since it was opened — the same
 *     inode, size, change and modification time as fstat(2) of the descriptor that was read.
 *     An edit made meanwhile (an append, an overwrite, a hard link added) would be lost by the
 *     rename: refused with FileChanged, the file left as the editor made it.
 *   - `force` over another file: the path must still be a regular file, the same inode that was
 *     checked before any work. Its contents may have changed meanwhile: the caller asked for them
 *     to be replaced, and a write landing a moment after the rename would be lost the same way,
 *     so refusing would only fail at random. Another file put in its place (a rename over it, a
 *     symlink, a new file where the path had been removed) was never checked: refused.
 *   - A file that appeared where there was none is never replaced, with or without `force`.
 *   - An aborted `signal` (Ctrl-C) stops here: a command that exits 130 / 143 has replaced
 *     nothing.
 * - Every failure removes the temp; the error names the path (see cli-errors.ts).
 */
import type { Stats } from 'node:fs';
import { type FileHandle, link, lstat, open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CliError, fileError, isErrno, quotePath } from '../cli-errors.js';
import { describeChange, type FileState, sameInode, unchangedSince } from './identity.js';
import { sweepOutputTemps, TEMP_MARK, tempPathFor } from './output-temps.js';
import { syncDir } from './sync-dir.js';
import { trackTemp, untrackTemp } from './temps.js';

export interface OutputOptions {
  /** Replace an existing regular file. */
  readonly force?: boolean;
  /** The output is the input: replace it, keeping its mode. */
  readonly inPlace?: boolean;
  /**
   * The input file as it was opened: fstat(2) of the descriptor the command reads. Refuses
   * writing over it without `inPlace`; with `inPlace`, the replacement is refused if the file
   * is no longer in this state.
   */
  readonly input?: FileState;
  /** Mode of a new file (default 0o600). */
  readonly mode?: number;
  /**
   * The bytes are plaintext (`decrypt`): the file gets no group or other permission bits, new or
   * replacing one (`--in-place`, `--force`), so what was a world-readable ciphertext does not
   * become world-readable plaintext. The owner's bits are kept as they were.
   */
  readonly plaintext?: boolean;
  /** Once aborted, nothing is replaced any more (checked right before the rename). */
  readonly signal?: AbortSignal;
  /** Told of each leftover temp of this target removed before writing (output-temps.ts). */
  readonly onNote?: (text: string) => void;
}

export { TEMP_MARK, tempPathFor };

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (e) {
    if (isErrno(e) && e.code === 'ENOENT') return undefined;
    throw fileError(e, path, 'cannot inspect');
  }
}

function describeKind(st: Stats): string {
  if (st.isSymbolicLink()) return 'a symbolic link (keyport does not write through links)';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/** Refuses what may never be replaced; returns whether `st` is an existing regular file. */
export function refuseSpecial(path: string, st: Stats | undefined): void {
  if (st === undefined || st.isFile()) return;
  if (st.isDirectory())
    throw new CliError('IsADirectory', `refusing to write ${quotePath(path)}: it is a directory`, { path });
  throw new CliError('NotARegularFile', `refusing to write ${quotePath(path)}: it is ${describeKind(st)}`, {
    path,
  });
}

/** Checks the target before any work is done; returns its current state. */
export async function checkOutput(path: string, o: OutputOptions): Promise<Stats | undefined> {
  const st = await lstatOrUndefined(path);
  refuseSpecial(path, st);
  if (st === undefined) return undefined;
  const isInput = o.input !== undefined && sameInode(st, o.input);
  if (isInput && o.inPlace !== true) {
    throw new CliError(
      'FileExists',
      `refusing to write ${quotePath(path)}: it is the input file (pass --in-place to replace it)`,
      { path },
    );
  }
  if (isInput && o.inPlace === true && st.nlink > 1) {
    // The rename replaces this name only: every other hard link would keep the old contents —
    // the plaintext after `encrypt`, a message still open to removed recipients after `rewrap`.
    throw new CliError(
      'FileExists',
      `refusing to replace ${quotePath(path)} in place: ${st.nlink - 1} other hard link(s) to it would keep the old contents (remove them, or write with -o)`,
      { path },
    );
  }
  if (isInput && o.inPlace === true && o.input !== undefined && !unchangedSince(st, o.input)) {
    // Changed between its open and now: refused before any provider work, not at the end.
    throw changedError(path, o.input, st, 'since keyport opened it');
  }
  if (!isInput && o.inPlace === true) {
    throw new CliError('FileExists', `--in-place writes the input file, not ${quotePath(path)}`, { path });
  }
  if (!isInput && o.force !== true) {
    throw new CliError('FileExists', `refusing to replace ${quotePath(path)}: it exists (pass --force)`, {
      path,
    });
  }
  return st;
}

function changedError(path: string, then: FileState, now: FileState | undefined, when: string): CliError {
  return new CliError(
    'FileChanged',
    `${quotePath(path)} changed ${when} (${describeChange(then, now)}); not replaced, so that change is not lost`,
    { path },
  );
}

/** Writes every chunk of `source` to `path` durably, or leaves `path` as it was. Returns the byte count. */
export async function writeOutputFile(
  path: string,
  source: AsyncIterable<Uint8Array>,
  o: OutputOptions = {},
): Promise<number> {
  const before = await checkOutput(path, o);
  const replacing = before !== undefined;
  // In place, the state to keep is the input's as it was opened, not this later lstat.
  const expected: FileState | undefined = replacing && o.inPlace === true ? (o.input ?? before) : before;
  // Permission bits only: a setuid or setgid bit kept on a file now owned by whoever runs
  // keyport (root, say) would hand that user's rights to the file's contents. Plaintext keeps
  // the owner's bits only.
  const mode = (replacing ? before.mode : (o.mode ?? 0o600)) & (o.plaintext === true ? 0o700 : 0o777);
  // Temps of this target left by a killed writer (a `decrypt` one holds plaintext): removed
  // once their writer is known to be gone, never a live writer's.
  for (const left of await sweepOutputTemps(path)) {
    o.onNote?.(`removed ${quotePath(left)}, a temp file left by a keyport process that is gone`);
  }
  const tmp = tempPathFor(path);
  // Tracked before it exists: a sweep by this process (another output in the same directory)
  // must see it as live from its first byte, and a hard exit removes it (ENOENT is fine).
  trackTemp(tmp);
  let h: FileHandle;
  try {
    h = await open(tmp, 'wx', 0o600);
  } catch (e) {
    untrackTemp(tmp);
    throw fileError(e, dirname(path), 'cannot create a file in');
  }
  let bytes = 0;
  try {
    try {
      if (replacing) await keepOwner(h, path, before);
      bytes = await writeChunks(h, source, (e) => fileError(e, path, 'cannot write'));
      try {
        await h.chmod(mode);
        await h.sync();
      } catch (e) {
        throw fileError(e, path, 'cannot write');
      }
    } finally {
      await h.close().catch(() => undefined);
    }
    o.signal?.throwIfAborted();
    // The target may have changed while we wrote: check again right before it is replaced.
    const now = await lstatOrUndefined(path);
    refuseSpecial(path, now);
    if (!replacing) {
      await publishNew(tmp, path, o.force === true);
    } else {
      const unchanged =
        now !== undefined &&
        (o.inPlace === true ? unchangedSince(now, expected as FileState) : sameInode(now, before));
      if (!unchanged) throw changedError(path, expected as FileState, now, 'while keyport ran');
      if (o.inPlace === true && (now as Stats).nlink > 1) {
        // A link added meanwhile moves the change time too, but not always by a clock tick.
        throw new CliError(
          'FileChanged',
          `${quotePath(path)} got ${(now as Stats).nlink - 1} other hard link(s) while keyport ran; not replaced (they would keep the old contents)`,
          { path },
        );
      }
      await rename(tmp, path).catch((e: unknown) => {
        throw fileError(e, path, 'cannot replace');
      });
    }
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    untrackTemp(tmp);
    throw error;
  }
  untrackTemp(tmp);
  await syncDir(dirname(path));
  return bytes;
}

/**
 * The replacement gets the replaced file's owner and group: the rename would otherwise hand the
 * file to whoever runs keyport (`sudo keyport decrypt f --in-place` making an application's file
 * root's, unreadable to it), where writing into the file as cp(1) does keeps them. Checked before
 * a byte is written; an owner that cannot be kept (another user's file, keyport not run as root)
 * is refused and the file left as it is.
 */
async function keepOwner(h: FileHandle, path: string, before: Stats): Promise<void> {
  const uid = process.geteuid?.();
  const gid = process.getegid?.();
  if (uid === undefined || (before.uid === uid && before.gid === gid)) return;
  try {
    await h.chown(before.uid, before.gid);
  } catch (e) {
    throw new CliError(
      'FilePermission',
      `refusing to replace ${quotePath(path)}: its owner (uid ${before.uid}, gid ${before.gid}) cannot be kept by uid ${uid} (${isErrno(e) ? e.code : 'error'}); run as its owner or as root`,
      { path, cause: e },
    );
  }
}

/** A batch of chunks for one writev(2): up to 1 MiB, and never near IOV_MAX pieces. */
const WRITE_BATCH_BYTES = 1024 * 1024;
const WRITE_BATCH_PIECES = 256;

/**
 * Writes every chunk of `source` to `h` at its position, in batches (one writev per MiB rather
 * than a write per chunk: an envelope stream yields a frame's pieces separately, and each call
 * is a round trip through the thread pool that keeps the chunks alive meanwhile). One batch is
 * written while the source makes the next (write-behind): the write runs on libuv's thread pool
 * while the calling thread seals or opens the next frame, so the two overlap instead of taking
 * turns (measured on `keyport encrypt` of 256 MiB, bench/file-throughput.bench.ts). At most one
 * write is in flight, so bytes land in order. A write error goes through `writeError` (it stops
 * the source at its next batch at the latest); an error of the source passes as it is, once the
 * write in flight has settled. Returns the byte count.
 */
export async function writeChunks(
  h: FileHandle,
  source: AsyncIterable<Uint8Array>,
  writeError: (e: unknown) => unknown = (e) => e,
): Promise<number> {
  let batch: Uint8Array[] = [];
  let batchBytes = 0;
  let total = 0;
  let writing: Promise<void> | undefined;
  const flush = async (): Promise<void> => {
    const pieces = batch;
    batch = [];
    batchBytes = 0;
    if (writing !== undefined) await writing;
    writing = writeAllv(h, pieces).catch((e: unknown) => {
      throw writeError(e);
    });
    // Observed here; the next flush or the end awaits it and surfaces its error.
    writing.catch(() => undefined);
  };
  try {
    for await (const chunk of source) {
      if (chunk.length === 0) continue;
      batch.push(chunk);
      batchBytes += chunk.length;
      total += chunk.length;
      if (batchBytes >= WRITE_BATCH_BYTES || batch.length >= WRITE_BATCH_PIECES) await flush();
    }
    if (batch.length > 0) await flush();
    if (writing !== undefined) await writing;
  } catch (error) {
    // No write may still be running when the caller closes the handle or removes the file.
    await writing?.catch(() => undefined);
    throw error;
  }
  return total;
}

/**
 * write(2) may take fewer bytes than given (a disk filling up does that before it says ENOSPC):
 * loop until every byte is written.
 */
export async function writeAll(h: FileHandle, chunk: Uint8Array): Promise<void> {
  await writeAllv(h, [chunk]);
}

/** writev(2) until every byte of `pieces` is written, resuming after a short write. */
async function writeAllv(h: FileHandle, pieces: readonly Uint8Array[]): Promise<void> {
  let rest = pieces.filter((p) => p.length > 0);
  while (rest.length > 0) {
    const { bytesWritten } =
      rest.length === 1
        ? await h.write(rest[0] as Uint8Array, 0, (rest[0] as Uint8Array).length)
        : await h.writev(rest);
    if (bytesWritten === 0) {
      throw Object.assign(new Error('no bytes written'), { code: 'EIO' });
    }
    rest = afterWritten(rest, bytesWritten);
  }
}

/** What of `pieces` is left once their first `written` bytes are out. */
function afterWritten(pieces: readonly Uint8Array[], written: number): Uint8Array[] {
  let skip = written;
  let i = 0;
  while (i < pieces.length && skip >= (pieces[i] as Uint8Array).length) {
    skip -= (pieces[i] as Uint8Array).length;
    i++;
  }
  const rest = pieces.slice(i);
  if (skip > 0 && rest.length > 0) rest[0] = (rest[0] as Uint8Array).subarray(skip);
  return rest;
}

/**
 * Puts `tmp` at `path` only if `path` does not exist (link is atomic and never replaces). A file
 * that appeared meanwhile is refused even with `force`: it is not the one that was checked.
 */
async function publishNew(tmp: string, path: string, force: boolean): Promise<void> {
  const appeared = (): CliError =>
    force
      ? new CliError(
          'FileChanged',
          `${quotePath(path)} appeared while keyport ran (it did not exist when checked); not replaced`,
          { path },
        )
      : new CliError(
          'FileExists',
          `refusing to replace ${quotePath(path)}: it appeared while writing (pass --force)`,
          { path },
        );
  try {
    await link(tmp, path);
  } catch (e) {
    if (isErrno(e) && e.code === 'EEXIST') throw appeared();
    // File systems without hard links: fall back to a rename after one more check.
    if (isErrno(e) && (e.code === 'EPERM' || e.code === 'ENOTSUP' || e.code === 'EOPNOTSUPP')) {
      if ((await lstatOrUndefined(path)) !== undefined) throw appeared();
      await rename(tmp, path).catch((err: unknown) => {
        throw fileError(err, path, 'cannot write');
      });
      return;
    }
    throw fileError(e, path, 'cannot write');
  }
  await unlink(tmp);
}

import { createHash, randomBytes } from 'node:crypto';
import {
  type BigIntStats,
  closeSync,
  constants,
  fsyncSync,
  openSync,
  readSync,
  renameSync,
  statSync,
} from 'node:fs';
import { lstat, open, readdir, readlink, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { KeyportError, NAME_MAX, quote } from '@keyport/core';
import { localError } from './errors.js';

/** Names this host in temp file names, so only this host's dead writers are swept. */
const HOST_TAG = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);

/**
 * The longest keystore file name, in bytes: the longest name made from it must fit NAME_MAX.
 * That is a lock-break temp, `<name>.lock.break.<host 8>.<pid>.<12 hex>.tmp`, 45 bytes more with
 * a 7-digit pid (Linux's largest). A longer name opened, but its first write (or its creation)
 * failed with ENAMETOOLONG, reported as `Unavailable` "does the directory exist?". Names are
 * not cut instead: the sweep recognises a dead writer's leftovers by the whole name.
 */
export const MAX_KEYSTORE_NAME_BYTES = NAME_MAX - 45;

/** Why `path`'s file name is too long to be a keystore, or undefined when it fits. */
export function nameTooLong(path: string): string | undefined {
  const bytes = Buffer.byteLength(basename(path));
  return bytes <= MAX_KEYSTORE_NAME_BYTES
    ? undefined
    : `the file name is ${bytes} bytes; at most ${MAX_KEYSTORE_NAME_BYTES} (lock and temp files beside it add to it)`;
}

/** A temp file name beside `path`: `<prefix>.<host>.<pid>.<random>.tmp`. */
export function tempName(path: string, prefix: string): string {
  return join(dirname(path), `${prefix}.${HOST_TAG}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Flags for opening a file that must be regular: never blocks on a FIFO or a terminal. */
export const NONBLOCKING_READ = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0);

export type FileKind =
  | 'regular file'
  | 'directory'
  | 'FIFO'
  | 'socket'
  | 'character device'
  | 'block device'
  | 'special file';

export function kindOf(st: {
  isFile(): boolean;
  isDirectory(): boolean;
  isFIFO(): boolean;
  isSocket(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
}): FileKind {
  if (st.isFile()) return 'regular file';
  if (st.isDirectory()) return 'directory';
  if (st.isFIFO()) return 'FIFO';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  return 'special file';
}

/** Thrown by openRegular for a path that exists but is not a regular file. */
export class NotRegularFile extends Error {
  constructor(readonly kind: FileKind) {
    super(`not a regular file: a ${kind}`);
  }
}

/**
 * Opens `path` for reading only if it is a regular file: the open itself cannot block (a FIFO
 * with no writer used to hang the keystore forever) and the kind is checked on the open
 * handle, so a path swapped after a check cannot slip through. A socket is ENXIO on open.
 */
export async function openRegular(path: string): Promise<Awaited<ReturnType<typeof open>>> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, NONBLOCKING_READ);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENXIO') throw new NotRegularFile('socket');
    throw error;
  }
  const st = await handle.stat();
  if (!st.isFile()) {
    await handle.close();
    throw new NotRegularFile(kindOf(st));
  }
  return handle;
}

/** The bytes of a small regular file (lock files); anything else or larger throws. */
export async function readRegularFile(path: string, maxBytes: number): Promise<Buffer> {
  const handle = await openRegular(path);
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) throw new Error('file too large');
    return await readSized(handle, size);
  } finally {
    await handle.close();
  }
}

/**
 * The first `size` bytes of an open file (fewer if it ends sooner), `size` being what its stat
 * said when checked against a limit. `readFile` takes its own stat and reads to the end when
 * that says 0: a file grown after the check, or a "regular" file whose size says nothing (a
 * keystore path linking to /proc/self/pagemap: size 0, 256 GiB of content), was read whole,
 * for minutes and gigabytes. A file that changed while read fails its own checks (length, digest).
 */
export async function readSized(handle: Awaited<ReturnType<typeof open>>, size: number): Promise<Buffer> {
  const bytes = Buffer.alloc(size);
  let at = 0;
  while (at < size) {
    const { bytesRead } = await handle.read(bytes, at, size - at, at);
    if (bytesRead === 0) break;
    at += bytesRead;
  }
  return at === size ? bytes : bytes.subarray(0, at);
}

/** readSized without yielding, on a file descriptor. */
export function readSizedSync(fd: number, size: number): Buffer {
  const bytes = Buffer.alloc(size);
  let at = 0;
  while (at < size) {
    const bytesRead = readSync(fd, bytes, at, size - at, at);
    if (bytesRead === 0) break;
    at += bytesRead;
  }
  return at === size ? bytes : bytes.subarray(0, at);
}

/**
 * Replaces `path` with `data` so that readers see either the old or the new file, never a
 * mix, even after a crash: write a temp file in the same directory, fsync it, rename it over
 * the target, then fsync the directory so the rename itself is durable.
 *
 * The commit is synchronous: `beforeCommit` (a deadline check) runs, then the rename, the
 * directory fsync and `afterCommit` (releasing the lock), with no await in between, so a
 * deadline timer either fires before the check (nothing is written) or after the result is on
 * its way (the caller is told it succeeded). A write that outlived its deadline never lands.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array,
  hooks: { beforeCommit?: () => void; afterCommit?: () => void } = {},
): Promise<void> {
  const dir = dirname(path);
  const temp = tempName(path, `.${basename(path)}`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    hooks.beforeCommit?.();
    renameSync(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  syncDirectorySync(dir);
  hooks.afterCommit?.();
}

/**
 * The file a write of `path` replaces and locks: `path` itself, or, when `path` is a symbolic
 * link, the file the link (chain) points to, existing or not. Renaming over the link itself
 * replaced the link with a regular file: the file it pointed to kept the old state, and a
 * process writing there (under its own `<target>.lock`) and one writing through the link
 * silently diverged. A link loop is returned as is; reading it fails (ELOOP) before any write.
 *
 * Links are followed here by hand, not by the kernel, so the kernel's own guard
 * (`fs.protected_symlinks`) is applied here too, whatever the sysctl says: a link in a sticky,
 * world-writable directory (/tmp) is followed only when this process or the directory's owner
 * owns it. Otherwise another user who planted `/tmp/app.keystore -> /home/me/.profile` before
 * the keystore was first made had keyport write (or sweep leftovers) wherever the link points.
 */
export async function writeTarget(path: string): Promise<string> {
  let current = path;
  for (let hops = 0; hops < 40; hops++) {
    let next: string;
    try {
      const link = await lstat(current);
      if (!link.isSymbolicLink()) return current;
      await refuseForeignLink(current, link.uid);
      next = resolve(dirname(current), await readlink(current));
    } catch (e) {
      if (e instanceof KeyportError) throw e;
      return current; // absent (the file to create) or gone meanwhile: the next step reports it
    }
    current = next;
  }
  return path;
}

/** See writeTarget: the kernel's protected_symlinks rule for a link we follow ourselves. */
async function refuseForeignLink(link: string, linkOwner: number): Promise<void> {
  const dir = await stat(dirname(link));
  const stickyWorldWritable = (dir.mode & 0o1002) === 0o1002;
  if (!stickyWorldWritable || linkOwner === process.geteuid?.() || linkOwner === dir.uid) return;
  throw localError(
    'AccessDenied',
    `options.path: the symbolic link ${quote(link)} sits in a sticky, world-writable directory and belongs to another user (uid ${linkOwner}); keyport does not follow it (as the kernel's fs.protected_symlinks would not)`,
  );
}

/** A change stamp of a file (device, inode, size, times), read without yielding. */
export function stampSync(path: string): { stamp: string; racy: boolean } {
  const st = statSync(path, { bigint: true });
  return { stamp: stampOf(st), racy: racyStamp(st, wallClockNs()) };
}

/**
 * The change stamp of stat results: a hint that the bytes are unchanged, good enough for a
 * lock-free read, never for a write. Every write of the keystore is a rename and an edit in
 * place moves mtime and ctime, but inode numbers are reused (two renames on ext4 give the
 * first file's number back) and timestamps can be coarse (1 s on ext4 with 128-byte inodes),
 * so two same-size writes within one tick can leave the stamp as it was.
 */
export function stampOf(st: BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

const SECOND_NS = 1_000_000_000n;
/** FAT's 2 s tick, the coarsest in use, and a second more for clocks that disagree (NFS). */
const RACY_NS = 3n * SECOND_NS;

/**
 * Whether a stamp cannot vouch for the bytes it was taken with: the file system keeps whole
 * seconds (mtime and ctime both on a second: ext4 with 128-byte inodes, ext3, HFS+, FAT) and the
 * stamp was taken (`seenAtNs`, wall clock) before that tick was surely over, so another write
 * of the same size in the same tick would leave it as it is. Reads then compare bytes until the
 * tick is past (as git does for its index's "racy" entries). A file system keeping nanoseconds
 * never makes a stamp racy (a write landing on a whole second: one in a billion, a re-read).
 */
export function racyStamp(st: BigIntStats, seenAtNs: bigint): boolean {
  return st.mtimeNs % SECOND_NS === 0n && st.ctimeNs % SECOND_NS === 0n && seenAtNs - st.mtimeNs < RACY_NS;
}

/** The wall clock in nanoseconds, as file timestamps count. */
export const wallClockNs = (): bigint => BigInt(Date.now()) * 1_000_000n;

/** True unless `pid` is known not to run here (EPERM: it runs, as another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Deletes the temp files a killed writer on this host left beside `path` (`.<name>.…tmp`
 * from writing the keystore, `<name>.lock.…tmp` from taking the lock), judged by their pid
 * no longer running. Nothing ever reads them, but each is a full sealed copy of an old keystore state:
 * left alone they pile up, and they keep key material that was destroyed since.
 */
export async function removeOrphanedTemps(path: string): Promise<void> {
  const name = basename(path);
  const pattern = new RegExp(
    `^(?:\\.${escapeRegExp(name)}|${escapeRegExp(name)}\\.lock(?:\\.break)?)\\.${HOST_TAG}\\.(\\d+)\\.[0-9a-f]+\\.tmp$`,
  );
  let entries: string[];
  try {
    entries = await readdir(dirname(path));
  } catch {
    return;
  }
  for (const entry of entries) {
    const pid = Number(pattern.exec(entry)?.[1] ?? Number.NaN);
    if (!Number.isSafeInteger(pid)) continue;
    const file = join(dirname(path), entry);
    // Our own pid: a temp older than this process is an earlier process's that had the same
    // pid (a restarted container); one written since may be a write of ours in progress.
    const orphaned = pid === process.pid ? await olderThanThisProcess(file) : !processAlive(pid);
    if (orphaned) await unlink(file).catch(() => undefined);
  }
}

async function olderThanThisProcess(file: string): Promise<boolean> {
  try {
    return (await lstat(file)).mtimeMs < performance.timeOrigin;
  } catch {
    return false;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function syncDirectorySync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some platforms (Windows) and file systems cannot fsync a directory; the rename is
    // still atomic there, only its durability across power loss is weaker.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * One migration at a time per journal: an exclusive lock file `<journal>.lock` holding the
 * holder's pid, host, start time and a nonce.
 *
 * - Acquire: the content is written to a temp file and hard-linked into place (link fails with
 *   EEXIST like O_EXCL, and nobody ever reads a half-written lock).
 * - Held by a live process, or by any process on another host: `MigrationLocked` (exit 7); the
 *   caller has touched nothing yet.
 * - Left by a process on this host that is gone (no such pid, a zombie, or the pid now belongs
 *   to a process started at another time): taken over, with a note. `breakLock` takes over any
 *   lock (for a lock from another host the user knows to be dead).
 * - A lock keyport did not write — a pid that is no process id (0, negative, fractional, beyond
 *   pid_t), fields of the wrong type, a symlink, FIFO or directory in its place — is damaged:
 *   `MigrationLocked` at once, saying so and that `--break-lock` (or removing it) is the way
 *   out. Not taken over as stale: whoever wrote it is unknown, so "its holder is gone" cannot be
 *   shown, and a wrong guess lets two runs work on one journal; nor waited on: a pid 0 would
 *   look alive forever (kill(0, 0) signals the caller's own process group). The lock and the
 *   take-over marker are read with O_NOFOLLOW | O_NONBLOCK, a few KiB at most, so a FIFO or a
 *   link to a device never blocks a run.
 * - Taking over is guarded by `<journal>.lock.break` (O_EXCL) and re-checks the lock's exact
 *   content, so two runs that both find a stale lock cannot both take it.
 * - Release removes the lock only if it still carries our nonce.
 * - Temp files (`<journal>.lock.<host>-<pid>-<random>.tmp`, and `.lock.break.…` for the marker)
 *   live for the moment of one link(2). They are removed at once on a signal's hard exit; a run
 *   killed with SIGKILL (or a crash) mid-way leaves one, which the next run to take the lock
 *   removes: when its writer (this host, by the name's host tag) is no longer running, or when
 *   it is older than a minute (any writer, or a name of an older version). A taker whose temp is
 *   removed under it sees link(2) fail with ENOENT and tries again with a new one, so even a
 *   wrong guess costs a retry, never a lock.
 * - Every one of these names fits NAME_MAX, however long the journal's name (lock-names.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants, lstatSync, readFileSync, type Stats, unlinkSync } from 'node:fs';
import { type FileHandle, lstat, open, readdir, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { createFileExclusive } from '@keyport/core';
import { CliError, fileError, isErrno, quotePath } from '../cli-errors.js';
import { escapeRegExp } from '../files/fit-name.js';
import { trackTemp, untrackTemp } from '../files/temps.js';
import { breakMarkerPathOf, lockPathOf, lockTempPrefixOf } from './lock-names.js';

export interface LockHolder {
  readonly pid: number;
  readonly host: string;
  readonly startedAt: string;
  readonly nonce: string;
  /** The holder's start time in clock ticks since boot (Linux /proc), to detect pid reuse. */
  readonly procStart?: string;
}

export interface HeldJournalLock {
  readonly path: string;
  release(): Promise<void>;
}

export interface LockOptions {
  readonly breakLock?: boolean;
  /** Told when a stale or broken lock is taken over. */
  readonly onNote?: (text: string) => void;
}

/**
 * The locks this process holds now (path → nonce), for the exits that skip `finally` blocks: a
 * second Ctrl-C, or the watchdog ending a run still busy after the first (main.ts). The lock is
 * taken before the target is walked and the providers are built, so such an exit can come
 * while it is held; it left the lock behind for the next run to take over with a note.
 */
const heldLocks = new Map<string, string>();

/**
 * Removes every lock this process holds, synchronously (safe in a signal handler right before
 * exit): only a small regular file that still carries our nonce, never one another run took.
 */
export function releaseHeldLocksSync(): void {
  for (const [path, nonce] of heldLocks) {
    try {
      const st = lstatSync(path);
      if (st.isFile() && st.size <= MAX_LOCK_BYTES) {
        const holder = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockHolder> | null;
        if (holder?.nonce === nonce) unlinkSync(path);
      }
    } catch {
      // gone, or not ours to judge: the next run decides
    }
  }
  heldLocks.clear();
}

/** A break marker left by a run killed while taking over is ignored after this long. */
const BREAK_STALE_MS = 10_000;
/** A lock temp file this old is a leftover, whoever wrote it (a live one lasts one link(2)). */
const TEMP_STALE_MS = 60_000;
/** A lock or marker is a line of JSON or a pid: anything larger is not one keyport wrote. */
const MAX_LOCK_BYTES = 4096;
/** pid_t is a signed 32-bit integer; pids are positive. */
const MAX_PID = 2 ** 31 - 1;

/** Whether `pid` can name one process (kill(2) reads 0 and negative pids as process groups). */
export function isValidPid(pid: unknown): pid is number {
  return typeof pid === 'number' && Number.isInteger(pid) && pid >= 1 && pid <= MAX_PID;
}

/** Field 22 (starttime) and field 3 (state) of /proc/<pid>/stat, where there is one. */
function procStat(pid: number): { start: string; state: string } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0] ?? '', start: rest[19] ?? '' };
  } catch {
    return undefined;
  }
}

/** The start time of process `pid` in clock ticks since boot, where /proc tells it. */
export function procStartOf(pid: number): string | undefined {
  const start = procStat(pid)?.start;
  return start !== undefined && /^\d+$/.test(start) ? start : undefined;
}

/** Whether the process `h` names runs (on this host). A pid that names no process is not alive. */
export function holderAlive(h: Pick<LockHolder, 'pid' | 'procStart'>): boolean {
  if (!isValidPid(h.pid)) return false;
  try {
    process.kill(h.pid, 0);
  } catch (e) {
    if (isErrno(e) && e.code === 'EPERM') return true;
    return false;
  }
  const st = procStat(h.pid);
  if (st === undefined) return true;
  if (st.state === 'Z' || st.state === 'X') return false;
  return h.procStart === undefined || h.procStart === st.start;
}

type Small =
  | { readonly kind: 'gone' }
  | { readonly kind: 'special'; readonly what: string; readonly ino: number }
  | { readonly kind: 'text'; readonly text: string; readonly ino: number };

function kindOf(st: Stats): string | undefined {
  if (st.isFile()) return undefined;
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'a device';
}

/**
 * The content of a lock or marker. Anything but a small regular file is `special` and never
 * opened; the open itself neither follows a symlink (O_NOFOLLOW) nor waits on a FIFO
 * (O_NONBLOCK) nor takes a terminal (O_NOCTTY) swapped in after the lstat.
 */
async function readSmall(path: string): Promise<Small> {
  let st: Stats;
  try {
    st = await lstat(path);
  } catch (e) {
    if (isErrno(e) && e.code === 'ENOENT') return { kind: 'gone' };
    throw fileError(e, path, 'cannot read the journal lock');
  }
  const special = kindOf(st);
  if (special !== undefined) return { kind: 'special', what: special, ino: st.ino };
  let h: FileHandle;
  try {
    h = await open(
      path,
      constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY,
    );
  } catch (e) {
    if (isErrno(e) && e.code === 'ENOENT') return { kind: 'gone' };
    if (isErrno(e) && (e.code === 'ELOOP' || e.code === 'ENXIO' || e.code === 'EISDIR'))
      return { kind: 'special', what: 'not a regular file', ino: st.ino };
    throw fileError(e, path, 'cannot read the journal lock');
  }
  try {
    const fst = await h.stat();
    const what = kindOf(fst);
    if (what !== undefined) return { kind: 'special', what, ino: fst.ino };
    if (fst.size > MAX_LOCK_BYTES) return { kind: 'special', what: `${fst.size} bytes long`, ino: fst.ino };
    const buf = Buffer.alloc(MAX_LOCK_BYTES + 1);
    const { bytesRead } = await h.read(buf, 0, buf.length, 0);
    if (bytesRead > MAX_LOCK_BYTES) return { kind: 'special', what: 'growing', ino: fst.ino };
    return { kind: 'text', text: buf.subarray(0, bytesRead).toString('utf8'), ino: fst.ino };
  } catch (e) {
    throw fileError(e, path, 'cannot read the journal lock');
  } finally {
    await h.close().catch(() => undefined);
  }
}

type LockState =
  | { readonly kind: 'gone' }
  /** Not JSON (yet): a lock being written on a file system without hard links, or garbage. */
  | { readonly kind: 'unreadable'; readonly seen: string }
  /** Not a lock keyport wrote: why, and what it says of its holder where it says anything. */
  | { readonly kind: 'damaged'; readonly why: string; readonly seen: string }
  | { readonly kind: 'held'; readonly holder: LockHolder; readonly seen: string };

/** `seen` is the lock's inode and exact content: a take-over removes only the lock it judged. */
async function readLock(path: string): Promise<LockState> {
  const small = await readSmall(path);
  if (small.kind === 'gone') return small;
  if (small.kind === 'special')
    return { kind: 'damaged', why: `it is ${small.what}`, seen: `${small.ino}:${small.what}` };
  const seen = `${small.ino}:${small.text}`;
  let v: unknown;
  try {
    v = JSON.parse(small.text);
  } catch {
    return { kind: 'unreadable', seen };
  }
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  if (!('pid' in o) && !('host' in o) && !('nonce' in o)) {
    return { kind: 'damaged', why: 'it holds no pid, host or nonce', seen };
  }
  if (!isValidPid(o.pid)) {
    return {
      kind: 'damaged',
      why: `its pid is ${typeof o.pid === 'number' ? String(o.pid) : (JSON.stringify(o.pid) ?? 'missing')}, which is not a process id`,
      seen,
    };
  }
  const badField = (['host', 'nonce'] as const).find((k) => typeof o[k] !== 'string' || o[k] === '');
  if (badField !== undefined) return { kind: 'damaged', why: `its ${badField} is missing or not text`, seen };
  if (o.startedAt !== undefined && typeof o.startedAt !== 'string')
    return { kind: 'damaged', why: 'its startedAt is not text', seen };
  if (o.procStart !== undefined && (typeof o.procStart !== 'string' || !/^\d+$/.test(o.procStart)))
    return { kind: 'damaged', why: 'its procStart is not a number of clock ticks', seen };
  return { kind: 'held', holder: o as unknown as LockHolder, seen };
}

function describe(h: LockHolder): string {
  return `pid ${h.pid} on host ${quotePath(h.host)} since ${h.startedAt ?? 'an unknown time'}`;
}

/** 8 hex digits of this host's name: whose a temp file is, without putting the name in it. */
export const HOST_TAG = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);

/**
 * A temp beside `path` for one attempt: `<path>.<host>-<pid>-<random>.tmp` (`<path>` shortened
 * when the whole would exceed NAME_MAX), tracked so a hard exit on a signal removes it.
 */
function lockTempFor(path: string): string {
  return `${lockTempPrefixOf(path)}.${HOST_TAG}-${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
}

/** Creates `path` holding `content`, never seen half-written; false when it exists. */
async function tryLink(path: string, content: string): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    const temp = lockTempFor(path);
    trackTemp(temp);
    try {
      return await createFileExclusive(path, content, temp);
    } catch (e) {
      // Our temp was removed under us (another run clearing what it took for a leftover): take
      // a new one. A missing directory fails the same way every time: reported after a few.
      if (isErrno(e) && e.code === 'ENOENT' && attempt < 3) continue;
      throw fileError(e, path, 'cannot create');
    } finally {
      untrackTemp(temp);
    }
  }
}

/** Removes `path` (ENOENT: already gone); any other failure is the file error it is. */
async function removeLock(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (e) {
    if (isErrno(e) && e.code === 'ENOENT') return;
    throw fileError(e, path, 'cannot remove the journal lock');
  }
}

/** Removes the lock if it is still exactly what was judged (`seen`), under the break marker. */
async function takeOver(path: string, marker: string, seen: string): Promise<boolean> {
  // The marker appears with its breaker's pid already in it (an empty marker left by a breaker
  // killed before it wrote its pid could only be cleared by age, stalling every run for seconds).
  if (!(await tryLink(marker, String(process.pid)))) {
    // A marker of a breaker that was killed: its pid is gone, or it is old.
    const found = await readSmall(marker);
    if (found.kind === 'gone') return false; // cleared meanwhile: look again
    const age = await lstat(marker).then(
      (s) => Date.now() - s.mtimeMs,
      () => 0,
    );
    // Markers are linked into place with their pid in them: an empty one was left by an older
    // version's breaker killed mid-write, and nobody is behind it. One that is no pid at all
    // (or a FIFO, a link) was not written by keyport: it waits out its age like a live one.
    const gone =
      found.kind === 'text' &&
      (found.text === '' || (isValidPid(Number(found.text)) && !holderAlive({ pid: Number(found.text) })));
    if (gone || age > BREAK_STALE_MS) await unlink(marker).catch(() => undefined);
    return false;
  }
  try {
    const now = await readLock(path);
    if (now.kind === 'gone' || now.seen !== seen) return false;
    await removeLock(path);
    return true;
  } finally {
    await unlink(marker).catch(() => undefined);
  }
}

/**
 * Removes the lock temp files runs killed while taking the lock left beside it (see the top of
 * this file). Best effort: a file that cannot be inspected or removed is left.
 */
export async function removeLeftoverLockTemps(
  lockPath: string,
  now = Date.now(),
  markerPath = `${lockPath}.break`,
): Promise<string[]> {
  const dir = dirname(lockPath);
  // The lock's and the marker's names, whole (earlier versions) or shortened (lock-names.ts).
  const bases = [lockPath, markerPath].flatMap((p) => [basename(p), basename(lockTempPrefixOf(p))]);
  const base = [...new Set(bases)].map(escapeRegExp).join('|');
  // This version's names carry the writer's host tag and pid; older ones only a random part.
  const ours = new RegExp(`^(?:${base})\\.(?:([0-9a-f]{8})-(\\d+)-)?[0-9a-f]{12}\\.tmp$`);
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return removed;
  }
  const uid = process.geteuid?.();
  for (const name of names) {
    const m = ours.exec(name);
    if (m === null) continue;
    const path = join(dir, name);
    const st = await lstat(path).catch(() => undefined);
    // Only regular files of this user: a link, FIFO or another user's file is not our leftover.
    if (st === undefined || !st.isFile() || (uid !== undefined && st.uid !== uid)) continue;
    const writerGone = m[1] === HOST_TAG && !holderAlive({ pid: Number(m[2]) });
    const old = now - Math.max(st.mtimeMs, st.ctimeMs) > TEMP_STALE_MS;
    if (!writerGone && !old) continue;
    try {
      await unlink(path);
      removed.push(path);
    } catch {
      // gone meanwhile, or not ours to remove
    }
  }
  return removed;
}

function brokenLockError(journal: string, path: string, why: string): CliError {
  return new CliError(
    'MigrationLocked',
    `the journal lock ${quotePath(path)} is damaged: ${why}. keyport never writes such a lock, so whether a migration holds the journal ${quotePath(journal)} cannot be told; if none is running, pass --break-lock (or remove the lock file)`,
    { path },
  );
}

export async function acquireJournalLock(journal: string, o: LockOptions = {}): Promise<HeldJournalLock> {
  const path = lockPathOf(journal);
  const marker = breakMarkerPathOf(journal);
  const me: LockHolder = {
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    nonce: randomBytes(12).toString('hex'),
    ...(procStat(process.pid) !== undefined ? { procStart: procStat(process.pid)?.start as string } : {}),
  };
  const content = `${JSON.stringify(me)}\n`;
  let unreadableSeen = 0;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (await tryLink(path, content)) {
      // Ours now: no other run takes the lock while we hold it, so what is left is leftovers.
      heldLocks.set(path, me.nonce);
      await removeLeftoverLockTemps(path, Date.now(), marker).catch(() => undefined);
      return {
        path,
        release: async () => {
          heldLocks.delete(path);
          const now = await readLock(path).catch(() => undefined);
          if (now?.kind === 'held' && now.holder.nonce === me.nonce)
            await removeLock(path).catch(() => undefined);
        },
      };
    }
    const state = await readLock(path);
    if (state.kind === 'gone') continue; // released meanwhile: try again
    let note: string;
    if (state.kind === 'unreadable') {
      // Not JSON: a lock being written right now (file systems without hard links write it in
      // place), or damaged. Looked at again a moment later; only --break-lock removes it.
      if (!o.breakLock) {
        if (++unreadableSeen >= 3) {
          throw new CliError(
            'MigrationLocked',
            `the journal lock ${quotePath(path)} cannot be read; if no migration is running, pass --break-lock`,
            { path },
          );
        }
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      note = `removed an unreadable journal lock ${quotePath(path)} (--break-lock)`;
    } else if (state.kind === 'damaged') {
      if (!o.breakLock) throw brokenLockError(journal, path, state.why);
      note = `removed a damaged journal lock ${quotePath(path)} (${state.why}) (--break-lock)`;
    } else {
      const holder = state.holder;
      const stale = holder.host === me.host && !holderAlive(holder);
      if (!stale && !o.breakLock) {
        throw new CliError(
          'MigrationLocked',
          `another migration holds the journal ${quotePath(journal)}: ${describe(holder)}`,
          { path },
        );
      }
      note = stale
        ? `took over the journal lock of ${describe(holder)}, which is no longer running`
        : `broke the journal lock of ${describe(holder)} (--break-lock)`;
    }
    if (await takeOver(path, marker, state.seen)) {
      o.onNote?.(note);
    } else {
      // Another run is taking the lock over right now (or just cleared a dead breaker's marker):
      // give it a moment before looking again.
      await new Promise((r) => setTimeout(r, 20 * (attempt + 1)));
    }
  }
  const last = await readLock(path).catch(() => undefined);
  throw new CliError(
    'MigrationLocked',
    `another migration holds the journal ${quotePath(journal)}${last?.kind === 'held' ? `: ${describe(last.holder)}` : ''}`,
    { path },
  );
}

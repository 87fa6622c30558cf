/**
 * An inter-process lock beside the keystore: `<keystore>.lock`, created with O_EXCL
 * (`open(..., 'wx')`) and holding `{ pid, host, nonce, createdAt }`.
 *
 * - Acquire: create the lock file; if it exists, wait (bounded, with jittered polling) and
 *   honour the AbortSignal while waiting.
 * - Stale lock: one written on this host by a pid that no longer runs (or unreadable and
 *   older than a few seconds) is broken. Breaking is itself guarded by `<keystore>.lock.break`
 *   (also O_EXCL) and re-checks the nonce, so two waiters cannot both break it and then
 *   delete each other's fresh lock. Locks from another host are never broken automatically.
 * - Release: delete the lock file only if it still carries our nonce.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, readlinkSync, unlinkSync } from 'node:fs';
import { lstat, stat, unlink } from 'node:fs/promises';
import { hostname, uptime } from 'node:os';
import { basename } from 'node:path';
import { createFileExclusive, quote } from '@keyport/core';
import {
  type FileKind,
  kindOf,
  NONBLOCKING_READ,
  processAlive,
  readRegularFile,
  readSizedSync,
  removeOrphanedTemps,
  tempName,
} from './atomic-write.js';
import { abortError, fsReason, localError } from './errors.js';

export interface LockOptions {
  readonly signal?: AbortSignal | undefined;
  /** Give up after this long; default 10 s. */
  readonly timeoutMs?: number | undefined;
}

interface LockContent {
  pid: number;
  host: string;
  nonce: string;
  createdAt: string;
  /** Linux: the kernel's boot id when the lock was written (see ProcessIdentity). */
  boot?: string | undefined;
  /** Linux: the pid namespace the pid belongs to. */
  pidns?: string | undefined;
  /** Linux: the time namespace, which shifts the start times /proc shows. */
  timens?: string | undefined;
  /** Linux: the holder's start time, in clock ticks since boot. */
  started?: string | undefined;
}

/**
 * What names a process beyond its pid, where the OS tells (Linux's /proc; elsewhere nothing):
 * within one boot and one pid namespace, pid and start time name one process for good. A pid
 * alone is reused: a writer killed mid-write whose pid went to another, long-lived process
 * (the pid counter wraps; after a reboot the same few pids are handed out again) left a lock
 * that was never broken, and every write of that keystore timed out until someone deleted it.
 */
type ProcessIdentity = Pick<LockContent, 'boot' | 'pidns' | 'timens' | 'started'>;

function readProc(read: () => string): string | undefined {
  try {
    return read().trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/<pid>/stat (start time); the command name before it may hold spaces and ')'. */
function startTicks(pid: number): string | undefined {
  const stat = readProc(() => readFileSync(`/proc/${pid}/stat`, 'utf8'));
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

let ownIdentity: ProcessIdentity | undefined;

function selfIdentity(): ProcessIdentity {
  if (ownIdentity === undefined) {
    // A /proc mounted for another pid namespace (`unshare -p` without a new /proc) numbers
    // processes differently: /proc/<pid> there is not our pid's process, so no pid namespace.
    const ownProc = readProc(() => readlinkSync('/proc/self')) === String(process.pid);
    ownIdentity = {
      boot: readProc(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8')),
      pidns: ownProc ? readProc(() => readlinkSync('/proc/self/ns/pid')) : undefined,
      timens: readProc(() => readlinkSync('/proc/self/ns/time')),
      started: ownProc ? startTicks(process.pid) : undefined,
    };
  }
  return ownIdentity;
}

/** A lock file whose content cannot be read is considered stale after this age. */
const UNREADABLE_STALE_MS = 5_000;
/** A break marker left by a crashed breaker is removed after this age. */
const BREAK_STALE_MS = 10_000;

/**
 * A lock or break marker naming this process's pid, yet created before this process started,
 * was left by an earlier process that had the same pid: typically a container restarted after
 * its app was killed mid-write (same hostname, pid 1 again). `processAlive` says yes to that pid
 * (it is us), so such a lock used to be never broken and every write timed out, forever. One
 * created since is this process's own (another writer of it, or a worker thread): alive.
 */
function holderGone(holder: LockContent, here: string, writtenAtMs: number | undefined): boolean {
  if (holder.host !== here) return false;
  // Written in another pid namespace of this boot (a container sharing the host name and the
  // keystore's volume): its pid names no process here, or another one (pid 1 is in every
  // container), so a live holder was taken for dead and its lock broken: two writers at once,
  // one write lost. Judged as another host's lock: never broken automatically.
  const me = selfIdentity();
  if (
    typeof holder.pidns === 'string' &&
    me.pidns !== undefined &&
    holder.pidns !== me.pidns &&
    holder.boot === me.boot
  )
    return false;
  if (holder.pid === process.pid) {
    // Our pid, boot, pid namespace and start time: this very process wrote it (another writer of
    // it, or a worker thread), whatever its createdAt says. Judged by the wall clock alone, a lock
    // taken after the clock was stepped back past this process's start (NTP, a resumed VM) read
    // as an earlier process's: a second provider of this process broke it while it was held, and
    // both wrote at once (one write lost).
    if (me.boot !== undefined && me.started !== undefined && holder.boot === me.boot) {
      if (holder.pidns === me.pidns && holder.timens === me.timens && holder.started === me.started) {
        return false;
      }
    }
    return Date.parse(holder.createdAt) < performance.timeOrigin;
  }
  if (!processAlive(holder.pid)) return true;
  // The pid runs: is it still the holder? Judged only on what cannot be a live holder elsewhere.
  // Fields of a file anyone who can write the directory can write: only well-formed ones count.
  const { boot, pidns, timens, started } = holder;
  if (!Number.isSafeInteger(holder.pid) || holder.pid <= 0 || typeof boot !== 'string') return false;
  if (me.boot === undefined) return false;
  if (boot !== me.boot) {
    // Written during an earlier boot of this machine, so its holder died at the reboot. The
    // file's own time must say so too: a lock written since this boot began is not judged by
    // its boot id (another machine that has this host name).
    return writtenAtMs !== undefined && writtenAtMs < Date.now() - uptime() * 1000 - BOOT_SLACK_MS;
  }
  // Same boot and pid namespace: the pid names the holder only while its start time matches
  // (as both see start times: the same time namespace, or none on either side).
  if (typeof pidns !== 'string' || pidns !== me.pidns || typeof started !== 'string') return false;
  if (timens !== me.timens) return false;
  const now = startTicks(holder.pid);
  return now !== undefined && now !== started;
}

/** How far a lock's file time must lie before this boot's start for the boot id to count. */
const BOOT_SLACK_MS = 60_000;

export interface HeldLock {
  release(): Promise<void>;
  /**
   * Releases without yielding to the event loop: used right after a commit, so no timer (a
   * caller's deadline) can fire between the write and the result reaching the caller.
   */
  releaseSync(): void;
}

async function readLock(path: string): Promise<LockContent | undefined> {
  try {
    // Never a blocking open: a FIFO planted as the lock file must not hang the writer.
    const parsed: unknown = JSON.parse((await readRegularFile(path, 64 * 1024)).toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null && typeof (parsed as LockContent).nonce === 'string') {
      return parsed as LockContent;
    }
  } catch {
    // unreadable: handled by the caller
  }
  return undefined;
}

/**
 * readLock without yielding (for releaseSync). Never a blocking open either: a FIFO put where
 * our lock was (by anyone who can write the directory) made readFileSync wait for a writer
 * that never came, and the whole process hung right after its write landed.
 */
function readLockSync(path: string): Partial<LockContent> | undefined {
  const fd = openSync(path, NONBLOCKING_READ);
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > 64 * 1024) return undefined;
    return JSON.parse(readSizedSync(fd, st.size).toString('utf8')) as Partial<LockContent>;
  } finally {
    closeSync(fd);
  }
}

/**
 * Creates `path` holding `content`, or returns false if it exists; never an empty lock that
 * every other writer would have to wait out (see core's `createFileExclusive`). The temp file is
 * named so that `removeOrphanedTemps` recognises a killed writer's leftover.
 */
async function createExclusive(path: string, content: string): Promise<boolean> {
  try {
    return await createFileExclusive(path, content, tempName(path, basename(path)));
  } catch (error) {
    throw localError(
      'Unavailable',
      `cannot create the keystore lock file ${quote(path)}: ${fsReason(error)}`,
      undefined,
      error,
    );
  }
}

/** What kind of file `path` is (not following a symbolic link), or undefined when absent. */
async function kindAt(path: string): Promise<FileKind | 'symbolic link' | undefined> {
  try {
    const st = await lstat(path);
    return st.isSymbolicLink() ? 'symbolic link' : kindOf(st);
  } catch {
    return undefined;
  }
}

async function writtenAt(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return undefined;
  }
}

async function ageMs(path: string): Promise<number | undefined> {
  const at = await writtenAt(path);
  return at === undefined ? undefined : Date.now() - at;
}

function lockIdentity(): Omit<LockContent, 'createdAt'> {
  return { pid: process.pid, host: hostname(), nonce: randomBytes(16).toString('hex'), ...selfIdentity() };
}

/** Removes the lock at `path` if it is stale; true when the caller should retry at once. */
async function breakIfStale(path: string): Promise<boolean> {
  const seen = await readLock(path);
  const here = hostname();
  const stale =
    seen === undefined
      ? ((await ageMs(path)) ?? 0) > UNREADABLE_STALE_MS
      : holderGone(seen, here, await writtenAt(path));
  if (!stale) return false;
  const breaker = `${path}.break`;
  const marker: LockContent = { ...lockIdentity(), createdAt: new Date().toISOString() };
  if (!(await createExclusive(breaker, JSON.stringify(marker)))) {
    // A breaker killed while holding the marker: drop it at once if its pid is gone (it
    // used to block every waiter for 10 s), else once it is old.
    const other = await readLock(breaker);
    const dead = other !== undefined && holderGone(other, here, await writtenAt(breaker));
    if (dead || ((await ageMs(breaker)) ?? 0) > BREAK_STALE_MS) {
      if ((await readLock(breaker))?.nonce === other?.nonce) return (await removed(breaker)) && dead;
      return dead;
    }
    return false;
  }
  try {
    const again = await readLock(path);
    // Only delete the very lock we judged stale, not one created since.
    if (again?.nonce === seen?.nonce) return await removed(path);
  } finally {
    await unlink(breaker).catch(() => undefined);
  }
  return true;
}

/**
 * Deletes `path`: true once it is gone (deleted now, or already), false when it stays. A stale
 * "lock" that cannot be deleted (a directory made where the lock goes, a file in a sticky
 * directory owned by another user) was reported broken every time: the writer retried at once,
 * without sleeping or looking at its deadline, and spun at full CPU forever (`lockTimeoutMs`
 * ignored; only a caller's signal ended it).
 */
async function removed(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal, undefined, 'waiting for the keystore lock'));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal, undefined, 'waiting for the keystore lock'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export async function acquireLock(keystorePath: string, options: LockOptions = {}): Promise<HeldLock> {
  const path = `${keystorePath}.lock`;
  const timeoutMs = options.timeoutMs ?? 10_000;
  // A monotonic clock: measured by the wall clock, a step back (NTP, a resumed VM) while waiting
  // for a held lock stretched lockTimeoutMs by the whole step (an hour back: an hour's wait),
  // and a step forward cut it short.
  const deadline = performance.now() + timeoutMs;
  const mine: LockContent = { ...lockIdentity(), createdAt: new Date().toISOString() };
  let delay = 5;
  for (;;) {
    if (options.signal?.aborted) throw abortError(options.signal, undefined, 'waiting for the keystore lock');
    if (await createExclusive(path, JSON.stringify(mine))) break;
    if (await breakIfStale(path)) continue;
    if (performance.now() >= deadline) {
      const kind = await kindAt(path);
      throw localError(
        'Timeout',
        kind === undefined || kind === 'regular file'
          ? `keystore lock not acquired within ${timeoutMs} ms (held by another writer)`
          : `keystore lock not acquired within ${timeoutMs} ms: ${quote(path)} is a ${kind}, not a lock file (remove it)`,
      );
    }
    await sleep(
      Math.min(delay, Math.max(1, deadline - performance.now())) * (0.5 + Math.random() / 2),
      options.signal,
    );
    delay = Math.min(delay * 2, 100);
  }
  return {
    async release() {
      const current = await readLock(path);
      if (current?.nonce === mine.nonce) await unlink(path).catch(() => undefined);
    },
    releaseSync() {
      try {
        if (readLockSync(path)?.nonce === mine.nonce) unlinkSync(path);
      } catch {
        // gone or replaced: not ours to remove
      }
    },
  };
}

/**
 * Removes what killed processes of this host left beside a keystore: temp files, a lock whose
 * holder is dead, a break marker whose breaker is dead or that is old. Run on open, so leftovers
 * do not wait for the next write (a temp is a full sealed copy of an old state, with key
 * material destroyed since). Best effort: a failure here never fails the open.
 */
export async function sweepLeftovers(keystorePath: string): Promise<void> {
  try {
    await removeOrphanedTemps(keystorePath);
    const lock = `${keystorePath}.lock`;
    // A break marker left by a dead breaker is cleared on the first pass, the lock on the next.
    for (let pass = 0; pass < 3 && (await ageMs(lock)) !== undefined; pass++) {
      if (!(await breakIfStale(lock))) break;
    }
    const breaker = `${lock}.break`;
    const age = await ageMs(breaker);
    if (age !== undefined) {
      const other = await readLock(breaker);
      const dead = other !== undefined && holderGone(other, hostname(), await writtenAt(breaker));
      if (dead || age > BREAK_STALE_MS) {
        if ((await readLock(breaker))?.nonce === other?.nonce) await unlink(breaker).catch(() => undefined);
      }
    }
  } catch {
    // leftovers are removed again on the next open or write
  }
}

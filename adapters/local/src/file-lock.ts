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
import { readFileSync, unlinkSync } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename } from 'node:path';
import { createFileExclusive } from '@keyport/core';
import { processAlive, readRegularFile, removeOrphanedTemps, tempName } from './atomic-write.js';
import { abortError, localError } from './errors.js';

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
function holderGone(holder: LockContent, here: string): boolean {
  if (holder.host !== here) return false;
  if (holder.pid === process.pid) return Date.parse(holder.createdAt) < performance.timeOrigin;
  return !processAlive(holder.pid);
}

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
      'cannot create the keystore lock file (does the directory exist?)',
      undefined,
      error,
    );
  }
}

async function ageMs(path: string): Promise<number | undefined> {
  try {
    return Date.now() - (await stat(path)).mtimeMs;
  } catch {
    return undefined;
  }
}

function lockIdentity(): Omit<LockContent, 'createdAt'> {
  return { pid: process.pid, host: hostname(), nonce: randomBytes(16).toString('hex') };
}

/** Removes the lock at `path` if it is stale; true when the caller should retry at once. */
async function breakIfStale(path: string): Promise<boolean> {
  const seen = await readLock(path);
  const here = hostname();
  const stale =
    seen === undefined ? ((await ageMs(path)) ?? 0) > UNREADABLE_STALE_MS : holderGone(seen, here);
  if (!stale) return false;
  const breaker = `${path}.break`;
  const marker: LockContent = { ...lockIdentity(), createdAt: new Date().toISOString() };
  if (!(await createExclusive(breaker, JSON.stringify(marker)))) {
    // A breaker killed while holding the marker: drop it at once if its pid is gone (it
    // used to block every waiter for 10 s), else once it is old.
    const other = await readLock(breaker);
    const dead = other !== undefined && holderGone(other, here);
    if (dead || ((await ageMs(breaker)) ?? 0) > BREAK_STALE_MS) {
      if ((await readLock(breaker))?.nonce === other?.nonce) await unlink(breaker).catch(() => undefined);
      return dead;
    }
    return false;
  }
  try {
    const again = await readLock(path);
    // Only delete the very lock we judged stale, not one created since.
    if (again?.nonce === seen?.nonce) await unlink(path).catch(() => undefined);
  } finally {
    await unlink(breaker).catch(() => undefined);
  }
  return true;
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
  const deadline = Date.now() + timeoutMs;
  const mine: LockContent = {
    pid: process.pid,
    host: hostname(),
    nonce: randomBytes(16).toString('hex'),
    createdAt: new Date().toISOString(),
  };
  let delay = 5;
  for (;;) {
    if (options.signal?.aborted) throw abortError(options.signal, undefined, 'waiting for the keystore lock');
    if (await createExclusive(path, JSON.stringify(mine))) break;
    if (await breakIfStale(path)) continue;
    if (Date.now() >= deadline) {
      throw localError(
        'Timeout',
        `keystore lock not acquired within ${timeoutMs} ms (held by another writer)`,
      );
    }
    await sleep(
      Math.min(delay, Math.max(1, deadline - Date.now())) * (0.5 + Math.random() / 2),
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
        const current = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockContent>;
        if (current.nonce === mine.nonce) unlinkSync(path);
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
      const dead = other !== undefined && holderGone(other, hostname());
      if (dead || age > BREAK_STALE_MS) {
        if ((await readLock(breaker))?.nonce === other?.nonce) await unlink(breaker).catch(() => undefined);
      }
    }
  } catch {
    // leftovers are removed again on the next open or write
  }
}

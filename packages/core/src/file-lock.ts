/**
 * An inter-process lock file (the audit log's `<log>.lock`, a PKCS#11 token's key-metadata
 * lock), created with O_EXCL and holding the owner's pid, host and a nonce. Node has no flock,
 * so a lock whose owner died is broken by the next waiter: when the owner's pid is gone (same
 * host and pid namespace) or the lock is older than `staleMs`. Breaking renames the lock to a
 * unique name first and checks it took the lock it judged stale, so two waiters never both
 * break, and a fresh lock is never removed.
 *
 * The audit log's lock (`acquireLiveLock`) never breaks the lock of an owner on this host that
 * is still running, however old: a writer paused mid-append (Ctrl-Z, a suspended laptop, a
 * debugger, an fsync that takes minutes) resumes and writes at the offset it read before the
 * pause, over the records of whoever broke its lock — acknowledged events lost, and the log
 * refused as tampered from then on. Age still decides for owners on other hosts, and a pid
 * taken over by a process that started after the lock was made (read from /proc on Linux).
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, link, lstat, open, readFile, readlink, rename, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { KeyportError } from './errors.js';
import { checkInteger, checkOptions, checkSignal, checkString, MAX_TIMER_MS } from './validate.js';

export interface FileLockOptions {
  /** How long to wait for the lock before failing; default 10 s. */
  readonly timeoutMs?: number;
  /** A lock older than this is taken to be abandoned, whoever holds it; default 30 s. */
  readonly staleMs?: number;
  /** Stops waiting (Aborted) when it fires; a lock already taken is kept until released. */
  readonly signal?: AbortSignal;
  /** What the lock guards, as errors name it (default "the lock"); no secrets. */
  readonly what?: string;
}

export interface FileLock {
  /** Removes the lock file if it is still this holder's (it may have been broken as stale). */
  release(): Promise<void>;
}

interface Owner {
  readonly pid: number;
  readonly host: string;
  readonly nonce: string;
  /**
   * The boot and pid namespace its pid belongs to (Linux; see `pidSpace`). Absent from locks
   * made by older keyport versions and where /proc is not readable.
   */
  readonly pidSpace?: string;
}

/** An empty or unreadable lock older than this lost its owner between create and write. */
const OWNERLESS_STALE_MS = 2_000;

function abortedError(): KeyportError {
  return new KeyportError('Aborted', 'the operation was aborted', { retryable: false });
}

/** Waits `ms`, or rejects (Aborted) as soon as `signal` fires. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(abortedError());
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortedError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Far more than an owner record takes: a larger lock file is not one a holder wrote. */
const MAX_OWNER_BYTES = 4096;

/**
 * The owner a lock file names, read without following a link, never blocking and never more
 * than MAX_OWNER_BYTES: anyone who can write the directory can put a FIFO there (a plain read
 * waited for a writer forever, past `timeoutMs`, and so did `release`) or a link to /dev/zero
 * (read until memory ran out). Such a lock has no owner and is judged by its age alone.
 */
async function readOwner(path: string): Promise<Owner | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile() || st.size > MAX_OWNER_BYTES) return undefined;
    const buf = Buffer.alloc(MAX_OWNER_BYTES + 1);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    if (bytesRead > MAX_OWNER_BYTES) return undefined;
    const raw = JSON.parse(buf.subarray(0, bytesRead).toString('utf8')) as Partial<Owner>;
    if (
      typeof raw.pid === 'number' &&
      typeof raw.host === 'string' &&
      typeof raw.nonce === 'string' &&
      (raw.pidSpace === undefined || typeof raw.pidSpace === 'string')
    ) {
      return raw as Owner;
    }
  } catch {
    // unreadable, half-written or gone: judged by age alone
  } finally {
    await handle.close().catch(() => undefined);
  }
  return undefined;
}

/**
 * The start of process `pid` in ms since the epoch, from /proc (Linux; undefined elsewhere or
 * when unreadable): its start in clock ticks since boot against this process's own, whose start
 * is `performance.timeOrigin`. Ticks are USER_HZ, 100 on every Linux Node runs on.
 */
async function processStartMs(pid: number): Promise<number | undefined> {
  const ticks = async (which: string): Promise<number | undefined> => {
    const stat = await readFile(`/proc/${which}/stat`, 'utf8').catch(() => undefined);
    // Fields after the command name, which is in parentheses and may hold spaces: state is
    // field 3, starttime field 22.
    const fields = stat?.slice(stat.lastIndexOf(')') + 2).split(' ');
    const value = Number(fields?.[19]);
    return Number.isSafeInteger(value) ? value : undefined;
  };
  const [theirs, ours] = await Promise.all([ticks(String(pid)), ticks('self')]);
  if (theirs === undefined || ours === undefined) return undefined;
  return performance.timeOrigin + (theirs - ours) * 10;
}

let ourPidSpace: Promise<string | undefined> | undefined;

/**
 * Where this process's pid means something: the machine's boot and this process's pid
 * namespace, as `<boot id>/pid:[<inode>]` (Linux; undefined elsewhere or when /proc is not
 * readable). Containers on one machine may share a hostname (set alike, or the host's) and a
 * volume, each with its own pid namespace: a pid from another one named nothing here, or an
 * unrelated process, and its live writer's lock was broken as dead (its pid 1 even taken for
 * this process's own). A lock from another pid space is judged as one from another host.
 */
function pidSpace(): Promise<string | undefined> {
  ourPidSpace ??= (async () => {
    const [boot, ns] = await Promise.all([
      readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => undefined),
      readlink('/proc/self/ns/pid').catch(() => undefined),
    ]);
    return boot === undefined || ns === undefined ? undefined : `${boot.trim()}/${ns}`;
  })();
  return ourPidSpace;
}

/**
 * Whether the owner's pid is one of this machine's pid space: its host is ours and so is its
 * pid space (a lock made by an older keyport names none, and is judged by its host, as then).
 */
async function sameSpace(owner: Owner): Promise<boolean> {
  if (owner.host !== hostname()) return false;
  return owner.pidSpace === undefined || owner.pidSpace === (await pidSpace());
}

/** Slack for comparing a process's start with a lock's mtime (tick and clock granularity). */
const START_SLACK_MS = 2_000;

/**
 * Whether the process a lock on this host names is the one that made it and still runs: its
 * pid is alive and did not start after the lock was made (a pid reused since). This process's
 * own pid counts only for locks made since it started (an earlier process with the same pid,
 * as a restarted container's pid 1, left the older ones).
 */
async function ownerRunning(owner: Owner, madeAtMs: number): Promise<boolean> {
  if (owner.pid === process.pid) return madeAtMs >= performance.timeOrigin;
  if (!pidAlive(owner.pid)) return false;
  const started = await processStartMs(owner.pid);
  return started === undefined || started <= madeAtMs + START_SLACK_MS;
}

async function isStale(
  path: string,
  staleMs: number,
  liveOwnersHold: boolean,
): Promise<{ stale: boolean; owner?: Owner }> {
  let mtimeMs: number;
  try {
    // The entry's own time: a link's target's time says nothing about when the lock was made.
    mtimeMs = (await lstat(path)).mtimeMs;
  } catch {
    return { stale: false }; // gone already: just retry
  }
  const owner = await readOwner(path);
  const age = Date.now() - mtimeMs;
  if (owner === undefined) {
    // The owner writes itself right after creating the lock: one that stays empty died in between.
    return { stale: age > Math.min(staleMs, OWNERLESS_STALE_MS) };
  }
  const local = await sameSpace(owner);
  if (liveOwnersHold && local) {
    return (await ownerRunning(owner, mtimeMs)) ? { stale: false } : { stale: true, owner };
  }
  if (age > staleMs) return { stale: true, owner };
  if (!local) return { stale: false };
  // Our own pid on a lock older than this process: an earlier process that had the same pid left
  // it (a container restarted after its app was killed, pid 1 again), and `pidAlive` says yes to
  // it (it is us). One made since this process started is this process's own: held.
  // (performance.timeOrigin is the process's start, in worker threads too.)
  if (owner.pid === process.pid)
    return mtimeMs < performance.timeOrigin ? { stale: true, owner } : { stale: false };
  if (!pidAlive(owner.pid)) return { stale: true, owner };
  return { stale: false };
}

/** Moves an abandoned lock aside; only the waiter whose rename took the judged lock removes it. */
async function breakLock(path: string, judged: Owner | undefined): Promise<void> {
  const aside = `${path}.break.${process.pid}.${randomBytes(6).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch {
    return; // someone else broke it first
  }
  const taken = await readOwner(aside);
  if (taken !== undefined && taken.nonce !== judged?.nonce) {
    // We moved a lock that replaced the abandoned one in between: put it back if its place is free.
    await link(aside, path).catch(() => undefined);
  }
  await unlink(aside).catch(() => undefined);
}

const FILE_LOCK_OPTIONS = {
  timeoutMs: true,
  staleMs: true,
  signal: true,
  what: true,
} as const satisfies Record<keyof FileLockOptions, true>;

export function acquireFileLock(lockPath: string, options: FileLockOptions = {}): Promise<FileLock> {
  return acquire(lockPath, options, false);
}

/**
 * As `acquireFileLock`, except that the lock of an owner on this host that still runs is never
 * taken as abandoned, whatever its age (see the module comment): for locks whose holder writes
 * at offsets it read under the lock, where a holder that resumes after a break destroys data.
 */
export function acquireLiveLock(lockPath: string, options: FileLockOptions = {}): Promise<FileLock> {
  return acquire(lockPath, options, true);
}

/** What each lock this module handed out stands for: its file and the nonce written there. */
const held = new WeakMap<FileLock, { readonly path: string; readonly nonce: string }>();

/**
 * Whether `lock`'s file still names its holder: false once another process broke it (judged it
 * stale, or someone removed it) — the holder must then not write what the lock guards.
 */
export async function stillHeld(lock: FileLock): Promise<boolean> {
  const mine = held.get(lock);
  if (mine === undefined) return false;
  return (await readOwner(mine.path))?.nonce === mine.nonce;
}

async function acquire(
  lockPath: string,
  options: FileLockOptions,
  liveOwnersHold: boolean,
): Promise<FileLock> {
  // Checked like every public function's options: a NaN timeout compared false with the clock
  // and waited forever, a NaN staleness never judged a lock abandoned.
  checkString(lockPath, 'lockPath', { min: 1, max: 4096 });
  const o = checkOptions(options, 'options', FILE_LOCK_OPTIONS);
  const timeoutMs =
    o.timeoutMs === undefined ? 10_000 : checkInteger(o.timeoutMs, 'options.timeoutMs', 0, MAX_TIMER_MS);
  const staleMs =
    o.staleMs === undefined ? 30_000 : checkInteger(o.staleMs, 'options.staleMs', 1, MAX_TIMER_MS);
  const what = o.what === undefined ? 'the lock' : checkString(o.what, 'options.what', { min: 1 });
  const signal = o.signal === undefined ? undefined : checkSignal(o.signal, 'options.signal');
  const deadline = Date.now() + timeoutMs;
  const space = await pidSpace();
  const owner: Owner = {
    pid: process.pid,
    host: hostname(),
    nonce: randomBytes(12).toString('hex'),
    ...(space !== undefined ? { pidSpace: space } : {}),
  };
  let delay = 1;
  for (;;) {
    // Checked before each attempt: an aborted caller takes no lock it would never release.
    if (signal?.aborted === true) throw abortedError();
    try {
      const handle = await open(
        lockPath,
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        0o600,
      );
      try {
        await handle.writeFile(JSON.stringify(owner));
      } finally {
        await handle.close();
      }
      const lock: FileLock = { release: () => releaseLock(lockPath, owner) };
      held.set(lock, { path: lockPath, nonce: owner.nonce });
      return lock;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new KeyportError('Unavailable', `${what} cannot be created`, {
          retryable: false,
          cause: e,
        });
      }
    }
    const { stale, owner: judged } = await isStale(lockPath, staleMs, liveOwnersHold);
    if (stale) {
      await breakLock(lockPath, judged);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new KeyportError('Unavailable', `${what} was held for more than ${timeoutMs} ms`, {
        retryable: false,
      });
    }
    await sleep(delay * (0.5 + Math.random()), signal);
    delay = Math.min(delay * 2, 25);
  }
}

async function releaseLock(lockPath: string, owner: Owner): Promise<void> {
  // Remove only our own lock: if it was broken as stale, another process may hold it now.
  const current = await readOwner(lockPath);
  if (current?.nonce === owner.nonce) await unlink(lockPath).catch(() => undefined);
}

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
 * - Taking over is guarded by `<journal>.lock.break` (O_EXCL) and re-checks the nonce, so two
 *   runs that both find a stale lock cannot both take it.
 * - Release removes the lock only if it still carries our nonce.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { createFileExclusive } from '@keyport/core';
import { CliError, fileError, isErrno, quotePath } from '../cli-errors.js';

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

/** A break marker left by a run killed while taking over is ignored after this long. */
const BREAK_STALE_MS = 10_000;

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

export function holderAlive(h: LockHolder): boolean {
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

async function readHolder(path: string): Promise<LockHolder | undefined> {
  try {
    const v = JSON.parse(await readFile(path, 'utf8')) as Partial<LockHolder>;
    if (typeof v.pid === 'number' && typeof v.host === 'string' && typeof v.nonce === 'string') {
      return v as LockHolder;
    }
  } catch {
    // unreadable or gone: handled by the caller
  }
  return undefined;
}

function describe(h: LockHolder): string {
  return `pid ${h.pid} on host ${quotePath(h.host)} since ${h.startedAt}`;
}

/** Creates `path` holding `content`, never seen half-written; false when it exists. */
async function tryLink(path: string, content: string): Promise<boolean> {
  try {
    return await createFileExclusive(path, content, `${path}.${randomBytes(6).toString('hex')}.tmp`);
  } catch (e) {
    throw fileError(e, path, 'cannot create');
  }
}

/** Removes the lock if it still holds `stale` (nonce), under the break marker. */
async function takeOver(path: string, stale: LockHolder | undefined): Promise<boolean> {
  const marker = `${path}.break`;
  // The marker appears with its breaker's pid already in it (an empty marker left by a breaker
  // killed before it wrote its pid could only be cleared by age, stalling every run for seconds).
  if (!(await tryLink(marker, String(process.pid)))) {
    // A marker of a breaker that was killed: its pid is gone, or it is old.
    const text = await readFile(marker, 'utf8').catch(() => undefined);
    if (text === undefined) return false; // cleared meanwhile: look again
    const pid = Number(text);
    const age = await stat(marker).then(
      (s) => Date.now() - s.mtimeMs,
      () => 0,
    );
    // Markers are linked into place with their pid in them: an empty one was left by an older
    // version's breaker killed mid-write, and nobody is behind it.
    const gone =
      text === '' ||
      (Number.isInteger(pid) && pid > 0 && !holderAlive({ pid, host: '', startedAt: '', nonce: '' }));
    if (gone || age > BREAK_STALE_MS) await unlink(marker).catch(() => undefined);
    return false;
  }
  try {
    const now = await readHolder(path);
    if (now?.nonce !== stale?.nonce) return false;
    await unlink(path).catch(() => undefined);
    return true;
  } finally {
    await unlink(marker).catch(() => undefined);
  }
}

export async function acquireJournalLock(journal: string, o: LockOptions = {}): Promise<HeldJournalLock> {
  const path = `${journal}.lock`;
  const me: LockHolder = {
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    nonce: randomBytes(12).toString('hex'),
    ...(procStat(process.pid) !== undefined ? { procStart: procStat(process.pid)?.start as string } : {}),
  };
  const content = `${JSON.stringify(me)}\n`;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (await tryLink(path, content)) {
      return {
        path,
        release: async () => {
          if ((await readHolder(path))?.nonce === me.nonce) await unlink(path).catch(() => undefined);
        },
      };
    }
    const holder = await readHolder(path);
    const stale = holder !== undefined && holder.host === me.host && !holderAlive(holder);
    if (holder === undefined) {
      // Unreadable: a lock being replaced right now, or damaged. Only --break-lock removes it.
      if (!o.breakLock) {
        await new Promise((r) => setTimeout(r, 50));
        if ((await readHolder(path)) === undefined && attempt >= 2) {
          throw new CliError(
            'MigrationLocked',
            `the journal lock ${quotePath(path)} cannot be read; if no migration is running, pass --break-lock`,
            { path },
          );
        }
        continue;
      }
    } else if (!stale && !o.breakLock) {
      throw new CliError(
        'MigrationLocked',
        `another migration holds the journal ${quotePath(journal)}: ${describe(holder)}`,
        { path },
      );
    }
    if (await takeOver(path, holder)) {
      o.onNote?.(
        holder === undefined
          ? `removed an unreadable journal lock ${quotePath(path)} (--break-lock)`
          : stale
            ? `took over the journal lock of ${describe(holder)}, which is no longer running`
            : `broke the journal lock of ${describe(holder)} (--break-lock)`,
      );
    } else {
      // Another run is taking the lock over right now (or just cleared a dead breaker's marker):
      // give it a moment before looking again.
      await new Promise((r) => setTimeout(r, 20 * (attempt + 1)));
    }
  }
  const holder = await readHolder(path);
  throw new CliError(
    'MigrationLocked',
    `another migration holds the journal ${quotePath(journal)}${holder !== undefined ? `: ${describe(holder)}` : ''}`,
    { path },
  );
}

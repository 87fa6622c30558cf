/**
 * The temp files of output-file.ts, named after their writer so that a later run can tell a
 * leftover from a file another process is still writing.
 *
 * A temp is `.<name>.<host>-<pid>-<start>-<random>.keyport.tmp` beside the target: `<host>` is 8
 * hex digits of the host name's SHA-256, `<pid>` the writer's pid, `<start>` its start time in
 * clock ticks since boot (Linux /proc; empty where there is none) so that a pid reused by
 * another process is not taken for the writer, and `<random>` 12 hex digits so that no two
 * attempts share a name. A SIGKILL, an OOM kill or a power loss leaves such a file (for
 * `decrypt`, plaintext); the next command that writes beside the same target (`sweepOutputTemps`)
 * removes it once its writer is known to be gone:
 *
 * - written on this host, and its pid runs no process (or a zombie), or a process whose start
 *   time is not the one in the name, or it is this very process but the file is older than it
 *   and not one of its own live temps;
 * - a regular file owned by the running user (lstat: a symlink is never followed, a FIFO or
 *   another user's file is never touched), whose name is exactly a temp name of that target.
 *
 * A temp of another host, of a live writer, or of an earlier version (whose name carries no
 * writer) is left: whether its writer is gone cannot be told.
 */
import { randomBytes } from 'node:crypto';
import { lstat, readdir, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { HOST_TAG, holderAlive, isValidPid, procStartOf } from '../migrate/lock.js';
import { escapeRegExp, fitPrefix } from './fit-name.js';
import { isLiveTemp } from './temps.js';

export const TEMP_MARK = '.keyport.tmp';

/**
 * Bytes a temp name adds to the target's at most: `.`, `.`, host (8), `-`, pid (10), `-`, start
 * (20: a 64-bit tick count), `-`, random (12) and TEMP_MARK. Fixed, so that the cut of a long
 * name is the same for every writer and a sweep finds every writer's temps.
 */
const TEMP_NAME_EXTRA = 2 + 8 + 1 + 10 + 1 + 20 + 1 + 12 + TEMP_MARK.length;

const MY_START = procStartOf(process.pid) ?? '';

/** The part of a temp's name before its writer: `.<name>` (cut and hash-tagged when long). */
function tempPrefixOf(path: string): string {
  return `.${fitPrefix(basename(path), TEMP_NAME_EXTRA)}`;
}

/**
 * A new temp beside `path`, named after this process (see the top of this file). A name too long
 * for the decoration is cut at a character boundary and tagged with its hash (fit-name.ts): the
 * temp stays under NAME_MAX, valid UTF-8, and recognisably the target's.
 */
export function tempPathFor(path: string): string {
  const writer = `${HOST_TAG}-${process.pid}-${MY_START}-${randomBytes(6).toString('hex')}`;
  return join(dirname(path), `${tempPrefixOf(path)}.${writer}${TEMP_MARK}`);
}

/** Matches temp names whose prefix matches `prefix` (a regular expression); groups: host, pid, start. */
function tempNamePattern(prefix: string): RegExp {
  return new RegExp(
    `^(?:${prefix})\\.([0-9a-f]{8})-([1-9]\\d{0,9})-(\\d{0,20})-[0-9a-f]{12}${escapeRegExp(TEMP_MARK)}$`,
  );
}

/** Whether the writer a temp's name records is known to be gone (see the top of this file). */
function writerGone(host: string, pid: number, start: string, path: string, changedMs: number): boolean {
  // Another host's process cannot be looked up; a pid keyport never writes (beyond pid_t) is
  // not its writer's.
  if (host !== HOST_TAG || !isValidPid(pid)) return false;
  if (pid === process.pid) {
    // Ours: a temp this process has open is live; one older than this process was left by an
    // earlier process that had the same pid (a container restarted: pid 1 again).
    if (isLiveTemp(path)) return false;
    if (start !== '' && MY_START !== '') return start !== MY_START;
    return changedMs < performance.timeOrigin;
  }
  return !holderAlive(start === '' ? { pid } : { pid, procStart: start });
}

/**
 * Removes the temps of `path` left by writers that are gone; returns the paths removed. Best
 * effort: a directory that cannot be read, or a file that cannot be inspected or removed, is
 * left as it is (the command's own write reports a real problem with the directory).
 */
export async function sweepOutputTemps(path: string): Promise<string[]> {
  return sweepDir(dirname(path), tempNamePattern(escapeRegExp(tempPrefixOf(path))));
}

/**
 * Removes the output temps of any target in `dir` left by writers that are gone: for `migrate`,
 * which writes beside every file of a directory. Same rules as `sweepOutputTemps`.
 */
export async function sweepOutputTempsIn(dir: string): Promise<string[]> {
  return sweepDir(dir, tempNamePattern('\\.[^/]+'));
}

async function sweepDir(dir: string, re: RegExp): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const uid = process.geteuid?.();
  const removed: string[] = [];
  for (const name of names) {
    const m = re.exec(name);
    if (m === null) continue;
    const path = join(dir, name);
    const st = await lstat(path).catch(() => undefined);
    if (st === undefined || !st.isFile() || (uid !== undefined && st.uid !== uid)) continue;
    if (!writerGone(m[1] as string, Number(m[2]), m[3] as string, path, Math.max(st.mtimeMs, st.ctimeMs)))
      continue;
    try {
      await unlink(path);
      removed.push(path);
    } catch {
      // gone meanwhile (another run swept it), or not ours to remove
    }
  }
  return removed;
}

/**
 * What a run works on: the journal's path and the files to visit, in order. The journal, its
 * lock and temp files (of any run) are never candidates, whatever the target matches.
 */
import { basename, dirname, join, resolve } from 'node:path';
import { escapeRegExp, fitPrefix } from '../files/fit-name.js';
import { lockPathsOf } from './lock-names.js';
import { expandTarget, oncePerFile, type SkippedFile } from './sources.js';

export const TEMP_SUFFIX = '.keyport-migrate.tmp';
export const DEFAULT_JOURNAL = '.keyport-migrate.journal';

export interface MigrationPlan {
  readonly files: readonly string[];
  /** Found by the walk but not candidates (symlinks not followed, ...), with why. */
  readonly skipped: readonly SkippedFile[];
  /**
   * The files were named one by one (a manifest, a list, a single message), not found by a walk:
   * one that does not exist is a failure, not a skip (a typo, or a file moved away, must not
   * let the run exit 0 as if every listed file were migrated).
   */
  readonly named: boolean;
}

/** Bytes a migration temp adds to the file's name: `.`, the run id (12 hex digits), TEMP_SUFFIX. */
const TEMP_EXTRA = 1 + 12 + TEMP_SUFFIX.length;

/**
 * The temp file of run `runId` for `file`: `<file>.<runId>.keyport-migrate.tmp` in the file's
 * directory, its name shortened when the file's own name leaves no room (fit-name.ts): a file
 * named with 250 bytes is valid and must migrate like any other.
 */
export function migrationTempFor(file: string, runId: string): string {
  return join(dirname(file), `${fitPrefix(basename(file), TEMP_EXTRA)}.${runId}${TEMP_SUFFIX}`);
}

/**
 * Whether `tmp` is a name `migrationTempFor(file, …)` makes (this version's or, for names that
 * fit, earlier ones'): the clean-up of a killed run's temps removes only such names, never a
 * file a damaged or hand-edited journal happens to list.
 */
export function isMigrationTempOf(file: string, tmp: string): boolean {
  if (dirname(tmp) !== dirname(file)) return false;
  const name = basename(file);
  const prefixes = [...new Set([name, fitPrefix(name, TEMP_EXTRA)])].map(escapeRegExp).join('|');
  return new RegExp(`^(?:${prefixes})\\.[0-9a-f]{12}${escapeRegExp(TEMP_SUFFIX)}$`).test(basename(tmp));
}

export function journalPathOf(cwd: string, journal: string | undefined): string {
  return resolve(cwd, journal ?? DEFAULT_JOURNAL);
}

/** The run's own bookkeeping files: the journal, its lock, and any keyport temp file. */
export function isMigrationArtifact(journalPath: string): (path: string) => boolean {
  // The lock's names are shortened for a long journal name (lock-names.ts): those too.
  const lockPaths = lockPathsOf(journalPath);
  return (p) =>
    p === journalPath ||
    p.startsWith(`${journalPath}.lock`) ||
    lockPaths.some((lock) => p.startsWith(lock)) ||
    p.endsWith(TEMP_SUFFIX) ||
    p.endsWith('.keyport.tmp');
}

/**
 * A target string is walked (sources.ts); an explicit list is taken as given, deduplicated and
 * sorted. An aborted `signal` stops either (KeyportError 'Aborted').
 */
export async function planFiles(
  target: string | readonly string[],
  cwd: string,
  journalPath: string,
  followSymlinks: boolean,
  signal?: AbortSignal,
): Promise<MigrationPlan> {
  const exclude = isMigrationArtifact(journalPath);
  if (typeof target === 'string') {
    return expandTarget(target, cwd, {
      exclude,
      ...(followSymlinks ? { followSymlinks: true } : {}),
      ...(signal !== undefined ? { signal } : {}),
    });
  }
  return {
    files: await oncePerFile(
      [...new Set(target.map((f) => resolve(cwd, f)))].filter((f) => !exclude(f)).sort(),
      signal,
    ),
    skipped: [],
    named: true,
  };
}

/**
 * What a run works on: the journal's path and the files to visit, in order. The journal, its
 * lock and temp files (of any run) are never candidates, whatever the target matches.
 */
import { resolve } from 'node:path';
import { expandTarget, type SkippedFile } from './sources.js';

export const TEMP_SUFFIX = '.keyport-migrate.tmp';
export const DEFAULT_JOURNAL = '.keyport-migrate.journal';

export interface MigrationPlan {
  readonly files: readonly string[];
  /** Found by the walk but not candidates (symlinks not followed, ...), with why. */
  readonly skipped: readonly SkippedFile[];
}

export function journalPathOf(cwd: string, journal: string | undefined): string {
  return resolve(cwd, journal ?? DEFAULT_JOURNAL);
}

/** The run's own bookkeeping files: the journal, its lock, and any keyport temp file. */
export function isMigrationArtifact(journalPath: string): (path: string) => boolean {
  return (p) =>
    p === journalPath ||
    p.startsWith(`${journalPath}.lock`) ||
    p.endsWith(TEMP_SUFFIX) ||
    p.endsWith('.keyport.tmp');
}

/** A target string is walked (sources.ts); an explicit list is taken as given, deduplicated and sorted. */
export async function planFiles(
  target: string | readonly string[],
  cwd: string,
  journalPath: string,
  followSymlinks: boolean,
): Promise<MigrationPlan> {
  const exclude = isMigrationArtifact(journalPath);
  if (typeof target === 'string') {
    return expandTarget(target, cwd, { exclude, ...(followSymlinks ? { followSymlinks: true } : {}) });
  }
  return {
    files: [...new Set(target.map((f) => resolve(cwd, f)))].filter((f) => !exclude(f)).sort(),
    skipped: [],
  };
}

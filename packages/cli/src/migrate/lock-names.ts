/**
 * The names of a journal's lock, its take-over marker and their temp files (lock.ts), all in
 * the journal's directory and all within NAME_MAX whatever the journal is called (fit-name.ts).
 * A journal name that leaves room keeps the names earlier versions used — `<journal>.lock`,
 * `<journal>.lock.break` — so runs of either version still exclude each other; a longer one gets
 * a shortened, hash-tagged name (earlier versions could not lock such a journal at all).
 */
import { basename, dirname, join } from 'node:path';
import { fitName, fitPrefix } from '../files/fit-name.js';

/** Bytes a lock temp adds at most: `.`, 8 hex digits, `-`, a pid (10 digits), `-`, 12 hex digits, `.tmp`. */
export const LOCK_TEMP_EXTRA = 1 + 8 + 1 + 10 + 1 + 12 + 4;

/** `<journal>.lock`, or its shortened form. */
export function lockPathOf(journal: string): string {
  return join(dirname(journal), fitName(basename(journal), '.lock'));
}

/** `<journal>.lock.break`, or its shortened form. */
export function breakMarkerPathOf(journal: string): string {
  return join(dirname(journal), fitName(basename(journal), '.lock.break'));
}

/**
 * The part of a lock temp's path before `.<host>-<pid>-<random>.tmp`, for the lock or marker at
 * `path`: fixed for one path (the reserve is the longest pid's), so a clean-up finds it again.
 */
export function lockTempPrefixOf(path: string): string {
  return join(dirname(path), fitPrefix(basename(path), LOCK_TEMP_EXTRA));
}

/** Every path the journal's lock files (lock, marker, their temps) start with. */
export function lockPathsOf(journal: string): string[] {
  const lock = lockPathOf(journal);
  const marker = breakMarkerPathOf(journal);
  return [...new Set([lock, marker, lockTempPrefixOf(lock), lockTempPrefixOf(marker)])];
}

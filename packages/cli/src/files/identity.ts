/**
 * A file's identity and state, to tell whether the file a command read is still, unchanged, the
 * one at its path right before that path is replaced: the same inode (dev, ino) — not another
 * file renamed over it — with the same size, change time and modification time — not written
 * in place since. The state to compare with is taken with fstat(2) from the descriptor that was
 * read, never from a later lstat of the path (which would already see an edit made meanwhile).
 *
 * Limits: an edit made between the last check and the rename(2) itself cannot be seen (there is
 * no compare-and-rename); and timestamps are as fine as the file system keeps them (Linux before
 * 6.13 stamps writes from a coarse clock, a few milliseconds), so a same-size overwrite within
 * one clock tick of the previous change could pass; every change of size is always seen.
 */
import type { Stats } from 'node:fs';

export type FileState = Pick<Stats, 'dev' | 'ino' | 'size' | 'ctimeMs' | 'mtimeMs'>;

export const sameInode = (a: Pick<Stats, 'dev' | 'ino'>, b: Pick<Stats, 'dev' | 'ino'>): boolean =>
  a.dev === b.dev && a.ino === b.ino;

/** Whether `now` is the file `then` described, not changed since. */
export const unchangedSince = (now: FileState, then: FileState): boolean =>
  sameInode(now, then) &&
  now.size === then.size &&
  now.ctimeMs === then.ctimeMs &&
  now.mtimeMs === then.mtimeMs;

/** What changed between `then` and `now` (for a message), `now` being absent when the path is gone. */
export function describeChange(then: FileState, now: FileState | undefined): string {
  if (now === undefined) return 'it was removed or renamed away';
  if (!sameInode(now, then)) return 'another file was put in its place';
  if (now.size !== then.size) return `it was written to (${then.size} bytes when read, ${now.size} now)`;
  if (now.mtimeMs !== then.mtimeMs) return 'it was written to (its modification time changed)';
  return 'its status changed (permissions, owner, links or contents: its change time moved)';
}

/**
 * Directory fsyncs coalesced per directory, so a rename survives a crash without one fsync per
 * file: a caller joins the next sync of its directory that has not started yet (it begins after
 * the caller's rename, so it covers it), or queues one behind the sync in progress.
 */
import { syncDir } from '../files/sync-dir.js';

export function coalescedDirSync(
  sync: (dir: string) => Promise<void> = syncDir,
): (dir: string) => Promise<void> {
  const queued = new Map<string, Promise<void>>();
  const running = new Map<string, Promise<void>>();
  return (dir) => {
    const waiting = queued.get(dir);
    if (waiting !== undefined) return waiting;
    const prior = running.get(dir) ?? Promise.resolve();
    const next = prior
      .catch(() => undefined)
      .then(() => {
        // Started: callers from now on need a later sync.
        queued.delete(dir);
        const current = sync(dir);
        running.set(dir, current);
        return current.finally(() => {
          if (running.get(dir) === current) running.delete(dir);
        });
      });
    queued.set(dir, next);
    return next;
  };
}

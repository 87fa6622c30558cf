/**
 * The inter-process lock on an audit log, `<log>.lock`: core's general lock file (file-lock.ts)
 * with the audit log's defaults and messages. A writer appends at the offset it read under the
 * lock, so the lock of a writer on this host that still runs is never broken for its age
 * (`acquireLiveLock`): broken while it was paused, it overwrote the records of whoever took over.
 */
import { acquireLiveLock, type FileLock } from './file-lock.js';

export interface AuditLockOptions {
  /** How long to wait for the lock before failing; default 10 s. */
  readonly timeoutMs?: number;
  /**
   * A lock older than this is taken to be abandoned, unless its owner is a process on this host
   * that still runs (a paused writer is waited for, not overwritten); default 30 s.
   */
  readonly staleMs?: number;
}

export type AuditLock = FileLock;

export function acquireAuditLock(lockPath: string, o: AuditLockOptions = {}): Promise<AuditLock> {
  return acquireLiveLock(lockPath, {
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
    ...(o.staleMs !== undefined ? { staleMs: o.staleMs } : {}),
    what: 'the audit log lock',
  });
}

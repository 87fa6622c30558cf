/**
 * The inter-process lock on an audit log, `<log>.lock`: core's general lock file (file-lock.ts)
 * with the audit log's defaults and messages.
 */
import { acquireFileLock, type FileLock } from './file-lock.js';

export interface AuditLockOptions {
  /** How long to wait for the lock before failing; default 10 s. */
  readonly timeoutMs?: number;
  /** A lock older than this is taken to be abandoned, whoever holds it; default 30 s. */
  readonly staleMs?: number;
}

export type AuditLock = FileLock;

export function acquireAuditLock(lockPath: string, o: AuditLockOptions = {}): Promise<AuditLock> {
  return acquireFileLock(lockPath, {
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
    ...(o.staleMs !== undefined ? { staleMs: o.staleMs } : {}),
    what: 'the audit log lock',
  });
}

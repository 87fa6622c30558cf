/**
 * The lock that serialises key-metadata writers of one token across the processes of one host.
 * PKCS#11 has no create-if-absent and no compare-and-swap: two processes creating the same label,
 * or rotating the same key, at the same moment would both write (two version-1 keys under one
 * label, two metadata objects). So every writer (create, rotate, enable/disable, destroy a
 * version, import) holds a lock file per token — core's `acquireFileLock`: O_EXCL, owner pid,
 * host and nonce, an abandoned lock broken — and reads the key again under it.
 *
 * The default directory is per user under os.tmpdir(), which other users can write to: one of
 * them could create our directory first (a symbolic link elsewhere, or a directory they own and
 * fill with locks that never go away) to redirect or block our writes. So it is created 0700 and
 * used only when it is a real directory owned by us that nobody else can write to. A directory
 * given in the options is the caller's choice (it may be shared by several accounts on purpose):
 * it must exist and be a directory.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, stat } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { acquireFileLock, type FileLock, KeyportError, quote } from '@keyport/core';

/**
 * How long a writer waits for the lock (the caller's signal ends the wait sooner). A holder
 * generates one key version: an RSA-4096 generation on a slow token takes seconds, and a few
 * processes may be queued, so this is generous.
 */
export const LOCK_TIMEOUT_MS = 60_000;
/**
 * A lock older than this is taken to be abandoned even when its pid is alive (a reused pid, or
 * a holder on another host when the directory is shared): far above any one write.
 */
const LOCK_STALE_MS = 10 * 60_000;

export interface TokenLockTarget {
  /** The given lockDirectory, or undefined for the per-user default. */
  readonly directory: string | undefined;
  /** The module's path with symbolic links resolved. */
  readonly modulePath: string;
  readonly tokenSerial: string;
  readonly tokenLabel: string;
  readonly provider: string;
}

function currentUser(): string {
  const uid = process.getuid?.();
  return uid !== undefined ? String(uid) : userInfo().username;
}

export function defaultLockDirectory(): string {
  return join(tmpdir(), `keyport-pkcs11-${currentUser()}`);
}

/**
 * One lock file per token: the module's real path with the token's serial and label, hashed
 * (a label may hold any character and a path any length; the name must fit NAME_MAX with the
 * suffix a breaking waiter adds).
 */
export function lockFileName(t: Pick<TokenLockTarget, 'modulePath' | 'tokenSerial' | 'tokenLabel'>): string {
  const digest = createHash('sha256')
    .update(JSON.stringify([t.modulePath, t.tokenSerial, t.tokenLabel]))
    .digest('hex');
  return `keyport-pkcs11-${digest}.lock`;
}

function unusable(dir: string, why: string, provider: string, cause?: unknown): KeyportError {
  return new KeyportError('Unavailable', `the key-metadata lock directory ${quote(dir)} ${why}`, {
    provider,
    retryable: false,
    ...(cause !== undefined ? { cause } : {}),
  });
}

/** The per-user default directory, created 0700; refused unless it is ours alone. */
async function privateDirectory(dir: string, provider: string): Promise<void> {
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw unusable(dir, 'cannot be created', provider, e);
  }
  // lstat: a symbolic link planted in its place is refused, not followed.
  const st = await lstat(dir).catch((e: unknown) => {
    throw unusable(dir, 'cannot be read', provider, e);
  });
  if (st.isSymbolicLink()) throw unusable(dir, 'is a symbolic link', provider);
  if (!st.isDirectory()) throw unusable(dir, 'is not a directory', provider);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw unusable(dir, 'is owned by another user', provider);
  if ((st.mode & 0o022) !== 0) throw unusable(dir, 'is writable by other users', provider);
}

async function givenDirectory(dir: string, provider: string): Promise<void> {
  const st = await stat(dir).catch((e: unknown) => {
    throw unusable(dir, 'cannot be read', provider, e);
  });
  if (!st.isDirectory()) throw unusable(dir, 'is not a directory', provider);
}

/** Takes the token's key-metadata lock; checked on every call, so a removed directory is made again. */
export async function lockToken(t: TokenLockTarget, signal: AbortSignal | undefined): Promise<FileLock> {
  const dir = t.directory ?? defaultLockDirectory();
  if (t.directory === undefined) await privateDirectory(dir, t.provider);
  else await givenDirectory(dir, t.provider);
  try {
    return await acquireFileLock(join(dir, lockFileName(t)), {
      timeoutMs: LOCK_TIMEOUT_MS,
      staleMs: LOCK_STALE_MS,
      what: "the token's key-metadata lock",
      ...(signal !== undefined ? { signal } : {}),
    });
  } catch (e) {
    throw e instanceof KeyportError ? e.withDetails({ provider: t.provider }) : e;
  }
}

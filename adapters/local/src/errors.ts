import { type ErrorCode, KeyportError, toKeyportError } from '@keyport/core';

/** The provider name carried by every error and audit event of this adapter. */
export const PROVIDER_NAME = 'local';

/**
 * Builds this adapter's errors. Messages are fixed text plus names (key names, principals,
 * versions): never key material, plaintext or context values.
 */
export function localError(code: ErrorCode, message: string, keyUri?: string, cause?: unknown): KeyportError {
  return new KeyportError(code, message, {
    provider: PROVIDER_NAME,
    keyUri,
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * The error for a fired signal: `Timeout` when it fired for a deadline (`AbortSignal.timeout`,
 * core's call policy reports its own), `Aborted` when the caller aborted.
 */
export function abortError(
  signal: AbortSignal | undefined,
  keyUri?: string,
  what = 'the operation',
): KeyportError {
  const reason: unknown = signal?.reason;
  if (reason instanceof KeyportError)
    return reason.withDetails({ provider: PROVIDER_NAME, ...(keyUri ? { keyUri } : {}) });
  if (reason instanceof Error && reason.name === 'TimeoutError') {
    return localError('Timeout', `${what} did not finish before its deadline`, keyUri);
  }
  return localError('Aborted', `${what} was aborted`, keyUri);
}

/** Throws `Aborted` (or `Timeout`, see abortError) when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, keyUri?: string): void {
  if (signal?.aborted) throw abortError(signal, keyUri);
}

/** Runs a core helper (URI parsing, context encoding) and labels its errors with this provider. */
export function labelled<T>(keyUri: string | undefined, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw toKeyportError(error, { provider: PROVIDER_NAME, ...(keyUri !== undefined ? { keyUri } : {}) });
  }
}

/** What a file system error code means, in words (the codes a keystore write or read meets). */
const FS_REASONS: Readonly<Record<string, string>> = {
  ENOENT: 'the directory does not exist',
  ENOTDIR: 'a part of the path is not a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exceeded',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files',
  EIO: 'an input/output error',
  ELOOP: 'too many symbolic links',
  EISDIR: 'it is a directory',
  ENAMETOOLONG: 'a file name is too long',
};

/**
 * The true reason a file system call failed, for a message: `no space left on the device
 * (ENOSPC)`. The lock file's error used to ask "does the directory exist?" whatever the cause (a
 * full disk, a read-only mount, a permission), sending users to look for a directory that was
 * there. Only the code is used: never the error's own text.
 */
export function fsReason(error: unknown): string {
  const code = error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined;
  if (typeof code !== 'string' || !/^E[A-Z0-9]{1,20}$/.test(code)) return 'an unexpected error';
  const words = Object.hasOwn(FS_REASONS, code) ? FS_REASONS[code] : undefined;
  return words === undefined ? code : `${words} (${code})`;
}

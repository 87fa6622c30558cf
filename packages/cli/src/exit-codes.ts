/**
 * Exit codes: documented, stable, one per kind of failure a script can act on.
 *
 * | code | meaning |
 * |---|---|
 * | 0 | success |
 * | 1 | the operation failed (key state, unsupported, already exists, some files failed, internal) |
 * | 2 | usage or configuration error (bad flags, bad config file, invalid argument) |
 * | 3 | not found (key, file, keystore) |
 * | 4 | access denied or authentication failed (wrong passphrase, token, PIN, missing grant) |
 * | 5 | provider unavailable, timed out or throttled |
 * | 6 | integrity: invalid or tampered ciphertext, context mismatch, audit log fails verification |
 */
import type { ErrorCode } from '@keyport/core';

export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  notFound: 3,
  accessDenied: 4,
  unavailable: 5,
  integrity: 6,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

const BY_CODE: Readonly<Record<ErrorCode, ExitCode>> = {
  NotFound: EXIT.notFound,
  AlreadyExists: EXIT.failed,
  AccessDenied: EXIT.accessDenied,
  InvalidArgument: EXIT.usage,
  InvalidCiphertext: EXIT.integrity,
  KeyStateConflict: EXIT.failed,
  Unsupported: EXIT.failed,
  Throttled: EXIT.unavailable,
  Unavailable: EXIT.unavailable,
  Timeout: EXIT.unavailable,
  Aborted: EXIT.failed,
  Integrity: EXIT.integrity,
  Internal: EXIT.failed,
};

export function exitCodeFor(code: ErrorCode): ExitCode {
  return BY_CODE[code];
}

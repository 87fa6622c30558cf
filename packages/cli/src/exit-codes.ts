/**
 * Exit codes: documented, stable, one per kind of failure a script can act on. The table is
 * repeated in the README ("Exit codes"), and each row has a test (test/exit-codes.test.ts).
 *
 * | code | meaning |
 * |---|---|
 * | 0 | success |
 * | 1 | the operation failed (key state, unsupported, already exists, some files failed, internal) |
 * | 2 | usage or configuration error (bad flags, bad config file, invalid argument) |
 * | 3 | not found (key, keystore) |
 * | 4 | access denied or authentication failed (wrong passphrase, token, PIN, missing grant) |
 * | 5 | provider unavailable, timed out or throttled |
 * | 6 | integrity: invalid or tampered ciphertext, context mismatch, audit log fails verification |
 * | 7 | another migration holds the journal's lock |
 * | 8 | a file or directory does not exist |
 * | 9 | permission denied on a file |
 * | 10 | a directory where a file was expected |
 * | 11 | not a regular file: a device, FIFO, socket or symlink where a file is written |
 * | 12 | the output exists (no --force), or is the input (no --in-place) |
 * | 13 | disk full (or quota exceeded) |
 * | 14 | read-only file system |
 * | 15 | another input/output error |
 * | 129 | hung up (SIGHUP: the terminal or SSH session closed) |
 * | 130 | interrupted (SIGINT) |
 * | 141 | stdout was closed by its reader (broken pipe, as a tool killed by SIGPIPE) |
 * | 143 | terminated (SIGTERM) |
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
  locked: 7,
  fileNotFound: 8,
  filePermission: 9,
  isADirectory: 10,
  notARegularFile: 11,
  fileExists: 12,
  diskFull: 13,
  readOnlyFileSystem: 14,
  fileIO: 15,
  hangup: 129,
  interrupted: 130,
  brokenPipe: 141,
  terminated: 143,
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
  return BY_CODE[code] ?? EXIT.failed;
}

/**
 * Failures that belong to the CLI rather than to a provider: the file system (not found,
 * permission, a directory, not a regular file, output exists, disk full, read-only, other I/O),
 * a migration lock held by another run, and an interrupt. Each has its own code and exit code,
 * and a file-system error always names the path (quoted, control characters escaped).
 */
import { escapeControl } from '@keyport/core';
import { EXIT, type ExitCode } from './exit-codes.js';

export const CLI_ERROR_EXITS = {
  FileNotFound: EXIT.fileNotFound,
  FilePermission: EXIT.filePermission,
  IsADirectory: EXIT.isADirectory,
  NotARegularFile: EXIT.notARegularFile,
  FileExists: EXIT.fileExists,
  /** The file being replaced (the input with --in-place, the output with --force) changed while the command ran. */
  FileChanged: EXIT.fileExists,
  DiskFull: EXIT.diskFull,
  ReadOnlyFileSystem: EXIT.readOnlyFileSystem,
  FileIO: EXIT.fileIO,
  MigrationLocked: EXIT.locked,
  Interrupted: EXIT.interrupted,
  Terminated: EXIT.terminated,
  HungUp: EXIT.hangup,
} as const satisfies Record<string, ExitCode>;

export type CliErrorCode = keyof typeof CLI_ERROR_EXITS;

const NEXT: Readonly<Record<CliErrorCode, string>> = {
  FileNotFound: 'check the path (and that its directory exists)',
  FilePermission: 'check the file and directory permissions, or run as a user who may read/write it',
  IsADirectory: 'name a file, not a directory',
  NotARegularFile: 'keyport writes only regular files: name a new or regular file, or use "-o -" for stdout',
  FileExists: 'pass --force to replace the output, --in-place to replace the input, or choose another -o',
  FileChanged:
    'something else changed the file while keyport ran, and nothing was replaced: check what changed it, then run the command again',
  DiskFull: 'free some space (or raise the quota) and run again; nothing was replaced',
  ReadOnlyFileSystem: 'write to a file system mounted read-write',
  FileIO: 'the device reported an I/O error; check it and run again',
  MigrationLocked:
    'wait for the other run to finish; if it is gone (another host, or the lock is wrong), pass --break-lock',
  Interrupted: 'run the same command again (migrations resume from their journal)',
  Terminated: 'run the same command again (migrations resume from their journal)',
  HungUp:
    'the terminal went away: run the same command again, in screen or tmux, or detached with setsid, if it must outlive the session (migrations resume from their journal)',
};

export class CliError extends Error {
  override readonly name = 'CliError';
  readonly exitCode: ExitCode;
  /** The file the error is about, for file-system errors. */
  readonly path?: string;

  constructor(
    readonly code: CliErrorCode,
    message: string,
    options: { readonly path?: string; readonly cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.exitCode = CLI_ERROR_EXITS[code];
    if (options.path !== undefined) this.path = options.path;
  }

  get next(): string {
    return NEXT[this.code];
  }
}

/**
 * A path for a message: JSON-quoted, so quotes and C0 control characters are escaped; then what
 * JSON leaves as it is and a terminal still acts on (C1 controls such as the one-byte CSI U+009B,
 * bidi overrides, line separators) is escaped too.
 */
export function quotePath(path: string): string {
  return escapeControl(JSON.stringify(path));
}

const ERRNO_KIND: Readonly<Record<string, CliErrorCode>> = {
  ENOENT: 'FileNotFound',
  ENOTDIR: 'FileNotFound',
  // A name longer than the file system takes is a wrong path, as ENOENT is; FileIO would send
  // the user looking for a failing device.
  ENAMETOOLONG: 'FileNotFound',
  EACCES: 'FilePermission',
  EPERM: 'FilePermission',
  EISDIR: 'IsADirectory',
  ELOOP: 'NotARegularFile',
  ENXIO: 'NotARegularFile',
  ENODEV: 'NotARegularFile',
  EEXIST: 'FileExists',
  ENOSPC: 'DiskFull',
  EDQUOT: 'DiskFull',
  EFBIG: 'DiskFull',
  EROFS: 'ReadOnlyFileSystem',
  EIO: 'FileIO',
};

const WHAT: Readonly<Record<CliErrorCode, string>> = {
  FileNotFound: 'does not exist',
  FilePermission: 'permission denied',
  IsADirectory: 'is a directory',
  NotARegularFile: 'is not a regular file',
  FileExists: 'already exists',
  FileChanged: 'changed while keyport ran',
  DiskFull: 'no space left on the device',
  ReadOnlyFileSystem: 'is on a read-only file system',
  FileIO: 'input/output error',
  MigrationLocked: 'is locked',
  Interrupted: 'interrupted',
  Terminated: 'terminated',
  HungUp: 'hung up',
};

/** What an errno says more precisely than its code's WHAT. */
const ERRNO_WHAT: Readonly<Record<string, string>> = {
  ENAMETOOLONG: 'a name in the path is longer than the file system allows',
};

export function isErrno(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string';
}

/** The CLI error for a Node file-system error on `path` (`doing`: "cannot write" ...). */
export function fileError(error: unknown, path: string, doing: string): CliError {
  if (error instanceof CliError) return error;
  const errno = isErrno(error) ? (error.code as string) : 'EIO';
  const code = ERRNO_KIND[errno] ?? 'FileIO';
  return new CliError(code, `${doing} ${quotePath(path)}: ${ERRNO_WHAT[errno] ?? WHAT[code]} (${errno})`, {
    path,
    cause: error,
  });
}

/**
 * The CLI error for a failed read of stdin or write to stdout or stderr, classified as
 * fileError's (no path to name).
 */
export function streamError(error: unknown, stream: 'stdin' | 'stdout' | 'stderr'): CliError {
  if (error instanceof CliError) return error;
  const errno = isErrno(error) ? (error.code as string) : 'EIO';
  const code = ERRNO_KIND[errno] ?? 'FileIO';
  const doing = stream === 'stdin' ? 'cannot read stdin' : `cannot write to ${stream}`;
  return new CliError(code, `${doing}: ${ERRNO_WHAT[errno] ?? WHAT[code]} (${errno})`, {
    cause: error,
  });
}

/**
 * The CLI error in `error` or its causes, if any: a CliError, or a Node errno error that carries
 * a path (fs calls set it), classified. Lets a read failure deep inside a stream surface as the
 * file-system error it is instead of a provider's "Internal".
 */
export function findCliError(error: unknown): CliError | undefined {
  // A provider that classified its failure (a keystore NotFound, AccessDenied...) keeps its code;
  // a raw file-system error is looked for only under an unclassified one (Internal, Aborted).
  const classified = (e: unknown): boolean =>
    e instanceof Error &&
    e.name === 'KeyportError' &&
    !['Internal', 'Aborted'].includes((e as { code?: string }).code ?? '');
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 8; depth++) {
    if (current instanceof CliError) return current;
    if (classified(current)) {
      // Only a CliError further down (ours, e.g. a read error inside a stream) still counts.
      for (let inner: unknown = (current as Error).cause; inner instanceof Error; inner = inner.cause) {
        if (inner instanceof CliError) return inner;
      }
      return undefined;
    }
    if (isErrno(current) && typeof current.path === 'string' && ERRNO_KIND[current.code as string]) {
      return fileError(current, current.path, current.syscall === 'write' ? 'cannot write' : 'cannot use');
    }
    current = current instanceof Error ? current.cause : undefined;
  }
  return undefined;
}

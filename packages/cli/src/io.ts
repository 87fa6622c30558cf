/**
 * Everything the CLI touches outside itself, passed in: streams, environment, working
 * directory and whether the terminal is interactive. `run(argv, io)` never reads `process`,
 * so tests drive the whole CLI in-process and the bin passes the real process.
 */
import type { Readable, Writable } from 'node:stream';
import { isErrno, streamError } from './cli-errors.js';

export interface CliIo {
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** stdout is a terminal: colour and tables for humans. */
  readonly stdoutIsTTY: boolean;
  /** stderr is a terminal: a live progress bar instead of periodic lines. */
  readonly stderrIsTTY: boolean;
  /** Aborts long operations (SIGINT / SIGTERM in the bin). */
  readonly signal?: AbortSignal;
}

/** Writes `text` and waits for the stream to take it (backpressure). */
export function writeText(stream: Writable, text: string): Promise<void> {
  return writeChunk(stream, Buffer.from(text, 'utf8'));
}

export function writeChunk(stream: Writable, chunk: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(chunk, (error) => (error ? reject(streamWriteError(error, stream)) : resolve()));
  });
}

/** A failed write to stdout (or stderr, fd 2) as the CLI error its errno is: ENOSPC is DiskFull, exit 13. */
function streamWriteError(error: Error, stream: Writable): unknown {
  return isErrno(error)
    ? streamError(error, (stream as { fd?: unknown }).fd === 2 ? 'stderr' : 'stdout')
    : error;
}

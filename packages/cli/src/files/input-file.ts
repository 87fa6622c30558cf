/**
 * Opening a command's input: a file (a directory is refused; FIFOs and devices may be read) or
 * stdin. Read errors surface as file-system errors naming the path, whatever stream reads them.
 */
import { constants, fstat, fstatSync, type Stats } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { CliError, fileError, isErrno, quotePath, streamError } from '../cli-errors.js';
import { describeChange } from './identity.js';

export interface OpenedInput {
  /** The bytes, read once. */
  readonly data: AsyncIterable<Uint8Array>;
  /** Identity of the file read (also for stdin redirected from a file), when known. */
  readonly stat: Stats | undefined;
  /** Total size when it is a regular file (for progress). */
  readonly size: number | undefined;
  close(): Promise<void>;
}

/** Bytes per read: a frame's worth (the default frame length), one thread-pool round trip each. */
const READ_CHUNK = 1024 * 1024;

async function readInto(h: FileHandle, buf: Buffer, path: string): Promise<number> {
  try {
    return (await h.read(buf, 0, buf.length, null)).bytesRead;
  } catch (e) {
    throw fileError(e, path, 'cannot read');
  }
}

/**
 * At the end of a regular file: it must still be as it was opened. A file written, truncated or
 * appended to while it was read gave a message of bytes it never held together (the start of the
 * old contents, the end of the new, or a cut-off prefix), sealed with exit 0; `tar` says "file
 * changed as we read it". Size and modification time are compared (the descriptor's inode cannot
 * change); the change time is not, so a chmod or a new hard link meanwhile is no change.
 */
async function checkUnchangedWhileRead(h: FileHandle, path: string, opened: Stats): Promise<void> {
  let now: Stats;
  try {
    now = await h.stat();
  } catch (e) {
    throw fileError(e, path, 'cannot read');
  }
  refuseIfChanged(quotePath(path), opened, now, path);
}

/** How a FileChanged message ends when no output was written (crypto.ts amends it when some was). */
export const NOTHING_WRITTEN = 'nothing was written; run again once nothing writes to it';

function refuseIfChanged(what: string, opened: Stats, now: Stats, path?: string): void {
  if (now.size === opened.size && now.mtimeMs === opened.mtimeMs) return;
  throw new CliError(
    'FileChanged',
    `${what} changed while keyport ran (${describeChange(opened, now)}, seen at the end of its read): ${NOTHING_WRITTEN}`,
    path !== undefined ? { path } : {},
  );
}

async function* readAll(h: FileHandle, path: string, opened: Stats | undefined): AsyncGenerator<Uint8Array> {
  const ahead = opened !== undefined;
  // A read that fills its buffer hands the buffer on and the next read gets a new one (the
  // consumer may keep a chunk while later reads arrive); a short read (a pipe, a FIFO, the end
  // of the file) hands on a copy of what it got, and the buffer is read into again. So no copy
  // for a regular file's full reads, and no chunk pins more memory than it carries.
  // With `ahead` (regular files) one read is always in flight: the next chunk is read on libuv's
  // thread pool while the consumer seals or opens this one, so reading and crypto overlap
  // instead of taking turns. Not for a FIFO or a device: a read there may wait forever, and a
  // read in flight holds the handle's close.
  let buf = Buffer.allocUnsafeSlow(READ_CHUNK);
  let next: Promise<number> | undefined = ahead ? readInto(h, buf, path) : undefined;
  try {
    for (;;) {
      const n = await (next ?? readInto(h, buf, path));
      next = undefined;
      if (n === 0) {
        if (opened !== undefined) await checkUnchangedWhileRead(h, path, opened);
        return;
      }
      let chunk: Buffer;
      if (n < buf.length) {
        // Its own memory (Buffer.from would put a small tail in Node's shared pool).
        chunk = Buffer.allocUnsafeSlow(n);
        buf.copy(chunk, 0, 0, n);
      } else {
        chunk = buf;
        buf = Buffer.allocUnsafeSlow(READ_CHUNK);
      }
      if (ahead) next = readInto(h, buf, path);
      yield chunk;
    }
  } finally {
    // The consumer stopped early (or a read failed): the read ahead settles before the handle
    // may be closed; its result or error is no one's.
    await next?.catch(() => undefined);
  }
}

export interface InputOptions {
  /**
   * The file is to be replaced (--in-place): only a regular file will do, opened without
   * following a symlink (O_NOFOLLOW) or waiting for a FIFO's writer (O_NONBLOCK), so one swapped
   * in since the caller's checks is refused at once instead of read through or waited on.
   */
  readonly toReplace?: boolean;
}

export async function openInputFile(path: string, o: InputOptions = {}): Promise<OpenedInput> {
  let h: FileHandle;
  try {
    h = await open(
      path,
      o.toReplace === true ? constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK : 'r',
    );
  } catch (e) {
    if (o.toReplace === true && isErrno(e) && e.code === 'ELOOP') {
      throw new CliError(
        'NotARegularFile',
        `refusing to write ${quotePath(path)}: it is a symbolic link (keyport does not write through links)`,
        { path },
      );
    }
    throw fileError(e, path, 'cannot read');
  }
  let st: Stats;
  try {
    st = await h.stat();
  } catch (e) {
    await h.close();
    throw fileError(e, path, 'cannot read');
  }
  if (st.isDirectory()) {
    await h.close();
    throw new CliError('IsADirectory', `cannot read ${quotePath(path)}: it is a directory`, { path });
  }
  if (o.toReplace === true && !st.isFile()) {
    await h.close();
    throw new CliError('NotARegularFile', `refusing to write ${quotePath(path)}: it is not a regular file`, {
      path,
    });
  }
  return {
    data: readAll(h, path, st.isFile() ? st : undefined),
    stat: st,
    size: st.isFile() ? st.size : undefined,
    close: () => h.close().catch(() => undefined),
  };
}

export function stdinInput(stdin: Readable): OpenedInput {
  const fd = (stdin as { fd?: unknown }).fd;
  let st: Stats | undefined;
  if (typeof fd === 'number') {
    try {
      st = fstatSync(fd);
    } catch {
      st = undefined;
    }
  }
  // Node gives a directory's descriptor as an empty stdin (`keyport encrypt -o x.enc < dir`
  // sealed zero bytes and exited 0): refused as a directory input file is.
  if (st?.isDirectory() === true) {
    throw new CliError('IsADirectory', 'cannot read stdin: it is a directory');
  }
  return {
    // A regular file on fd 0 (`encrypt < big.bin`) is checked at the end of its read as a named
    // input file is: written to meanwhile, the bytes read are no state it ever had as a whole.
    data: readErrorsOfStdin(
      stdin as AsyncIterable<Uint8Array>,
      typeof fd === 'number' && st?.isFile() === true ? { fd, opened: st } : undefined,
    ),
    stat: st,
    size: st?.isFile() === true ? st.size : undefined,
    close: async () => undefined,
  };
}

/**
 * `source` with its read errors (EIO from a terminal whose session hung up, EBADF from a
 * descriptor opened write-only) as the file-system errors they are, naming stdin: an errno error
 * without a path passed up as a provider's "Internal" (exit 1). Not a generator: `return()` goes
 * straight to the stream's iterator, which destroys stdin even while a read waits (abortable.ts).
 */
const fstatOf = promisify(fstat);

function readErrorsOfStdin(
  source: AsyncIterable<Uint8Array>,
  file: { readonly fd: number; readonly opened: Stats } | undefined,
): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
      const it = source[Symbol.asyncIterator]();
      return {
        next: async () => {
          let r: IteratorResult<Uint8Array>;
          try {
            r = await it.next();
          } catch (e) {
            throw isErrno(e) ? streamError(e, 'stdin') : e;
          }
          if (r.done === true && file !== undefined) {
            let now: Stats;
            try {
              now = await fstatOf(file.fd);
            } catch (e) {
              throw isErrno(e) ? streamError(e, 'stdin') : e;
            }
            refuseIfChanged('stdin', file.opened, now);
          }
          return r;
        },
        return: (value?: unknown) => it.return?.(value) ?? Promise.resolve({ done: true, value: undefined }),
      };
    },
  };
}

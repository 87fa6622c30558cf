/**
 * Opening a command's input: a file (a directory is refused; FIFOs and devices may be read) or
 * stdin. Read errors surface as file-system errors naming the path, whatever stream reads them.
 */
import { fstatSync, type Stats } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { CliError, fileError, quotePath } from '../cli-errors.js';

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

async function* readAll(h: FileHandle, path: string): AsyncGenerator<Uint8Array> {
  // A read that fills its buffer hands the buffer on and the next read gets a new one (the
  // consumer may keep a chunk while later reads arrive); a short read (a pipe, a FIFO, the end
  // of the file) hands on a copy of what it got, and the buffer is read into again. So no copy
  // for a regular file's full reads, and no chunk pins more memory than it carries.
  let buf = Buffer.allocUnsafeSlow(READ_CHUNK);
  for (;;) {
    let n: number;
    try {
      ({ bytesRead: n } = await h.read(buf, 0, buf.length, null));
    } catch (e) {
      throw fileError(e, path, 'cannot read');
    }
    if (n === 0) return;
    if (n < buf.length) {
      yield Buffer.from(buf.subarray(0, n));
      continue;
    }
    const full = buf;
    buf = Buffer.allocUnsafeSlow(READ_CHUNK);
    yield full;
  }
}

export async function openInputFile(path: string): Promise<OpenedInput> {
  let h: FileHandle;
  try {
    h = await open(path, 'r');
  } catch (e) {
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
  return {
    data: readAll(h, path),
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
  return {
    data: stdin as AsyncIterable<Uint8Array>,
    stat: st,
    size: st?.isFile() === true ? st.size : undefined,
    close: async () => undefined,
  };
}

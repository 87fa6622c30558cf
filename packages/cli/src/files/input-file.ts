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

async function* readAll(h: FileHandle, path: string): AsyncGenerator<Uint8Array> {
  const buf = Buffer.allocUnsafe(256 * 1024);
  for (;;) {
    let n: number;
    try {
      ({ bytesRead: n } = await h.read(buf, 0, buf.length, null));
    } catch (e) {
      throw fileError(e, path, 'cannot read');
    }
    if (n === 0) return;
    // A copy: the consumer may keep the chunk while the next read fills the buffer.
    yield Buffer.from(buf.subarray(0, n));
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

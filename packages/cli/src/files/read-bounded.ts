/**
 * Reads a small file the user names (the config, a secret or key file, a CA bundle, a signed
 * anchor, a migration manifest) with a size bound, so that a path to a device that never ends
 * (`/dev/zero`, `/dev/urandom`) or a runaway pipe fails with a clear error instead of filling
 * memory. Pipes and character devices are still read (`/dev/fd/N`, process substitution): only
 * the number of bytes matters.
 *
 * Secrets are read this way too, so no byte goes through Node's shared Buffer pool: the result
 * is memory of its own (exactly its length), and the read buffers are zeroed once copied.
 */
import { open } from 'node:fs/promises';

/** The error a bounded read throws past its bound (no errno `code`: it is not one). */
export class FileTooLarge extends Error {
  constructor(
    readonly path: string,
    readonly maxBytes: number,
  ) {
    super(`${path} is larger than ${maxBytes} bytes`);
  }
}

const CHUNK = 64 * 1024;

export async function readBounded(path: string, maxBytes: number): Promise<Buffer> {
  const file = await open(path, 'r');
  const chunks: Buffer[] = [];
  try {
    let total = 0;
    for (;;) {
      // One byte past the bound tells "exactly maxBytes" from "more".
      const room = Math.min(CHUNK, maxBytes + 1 - total);
      const { bytesRead, buffer } = await file.read(Buffer.allocUnsafeSlow(room), 0, room, null);
      if (bytesRead === 0) {
        const out = Buffer.allocUnsafeSlow(total);
        let at = 0;
        for (const c of chunks) at += c.copy(out, at);
        return out;
      }
      chunks.push(buffer.subarray(0, bytesRead));
      total += bytesRead;
      if (total > maxBytes) throw new FileTooLarge(path, maxBytes);
    }
  } finally {
    for (const c of chunks) c.fill(0);
    await file.close();
  }
}

/** What went wrong reading a file, for messages: "larger than N bytes" or the errno code. */
export function readFailure(e: unknown): string {
  if (e instanceof FileTooLarge) return `larger than ${e.maxBytes} bytes`;
  return (e as NodeJS.ErrnoException).code ?? 'error';
}

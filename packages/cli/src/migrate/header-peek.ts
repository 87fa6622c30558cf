/**
 * Reads just enough of a message file to list its encrypted data keys, so migrate can decide
 * what a file needs (add --to? drop --from? nothing?) without a KMS call. Only the fields up
 * to the EDK list are read (AWS Encryption SDK message format v1 and v2); everything after is
 * left to the envelope, which verifies it.
 */
import { type FileHandle, open } from 'node:fs/promises';
import type { EncryptedDataKey } from '@keyport/envelope';

export type Peeked =
  | { readonly kind: 'envelope'; readonly version: 1 | 2; readonly edks: readonly EncryptedDataKey[] }
  | { readonly kind: 'other' };

const MAX_HEADER_BYTES = 1024 * 1024;

class Cursor {
  at = 0;
  constructor(readonly buf: Buffer) {}
  need(n: number): boolean {
    return this.at + n <= this.buf.length;
  }
  u16(): number {
    const v = this.buf.readUInt16BE(this.at);
    this.at += 2;
    return v;
  }
  bytes(n: number): Buffer {
    const v = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return v;
  }
}

/** Undefined means "need more bytes". */
function parseEdks(buf: Buffer): Peeked | undefined {
  const c = new Cursor(buf);
  if (!c.need(1)) return undefined;
  const version = c.bytes(1)[0];
  if (version === 0x02) {
    if (!c.need(2 + 32 + 2)) return undefined;
    c.at += 2 + 32;
  } else if (version === 0x01) {
    if (!c.need(1 + 2 + 16 + 2)) return undefined;
    if (c.bytes(1)[0] !== 0x80) return { kind: 'other' };
    c.at += 2 + 16;
  } else {
    return { kind: 'other' };
  }
  const aadLength = c.u16();
  if (!c.need(aadLength + 2)) return undefined;
  c.at += aadLength;
  const count = c.u16();
  if (count === 0) return { kind: 'other' };
  const edks: EncryptedDataKey[] = [];
  for (let i = 0; i < count; i++) {
    const parts: Buffer[] = [];
    for (let j = 0; j < 3; j++) {
      if (!c.need(2)) return undefined;
      const n = c.u16();
      if (!c.need(n)) return undefined;
      parts.push(Buffer.from(c.bytes(n)));
    }
    const [id, info, ct] = parts as [Buffer, Buffer, Buffer];
    edks.push({ providerId: id.toString('utf8'), providerInfo: info, ciphertext: ct });
  }
  return { kind: 'envelope', version: version === 0x02 ? 2 : 1, edks };
}

/**
 * The header from the first bytes of a file, when they hold all of it; `complete` says they are
 * the whole file (then a header cut short is not an envelope). Undefined: read more (peekHandle).
 */
export function peekPrefix(head: Uint8Array, complete: boolean): Peeked | undefined {
  const buf = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  return parseEdks(buf) ?? (complete ? { kind: 'other' } : undefined);
}

export async function peekMessage(path: string): Promise<Peeked> {
  const h = await open(path, 'r');
  try {
    return await peekHandle(h);
  } finally {
    await h.close();
  }
}

/** The header of the file open as `h`, read from offset 0 (the handle's position is not used). */
export async function peekHandle(h: FileHandle): Promise<Peeked> {
  {
    let size = 16 * 1024;
    for (;;) {
      const buf = Buffer.alloc(size);
      const { bytesRead } = await h.read(buf, 0, size, 0);
      const parsed = parseEdks(buf.subarray(0, bytesRead));
      if (parsed !== undefined) return parsed;
      if (bytesRead < size || size >= MAX_HEADER_BYTES) return { kind: 'other' };
      size *= 4;
    }
  }
}

/**
 * Big-endian byte reading and writing for the ESDK message format. The reader throws
 * `NeedMoreBytes` when it runs off the end, so a streaming parser can wait for more input
 * while a buffer parser turns it into InvalidCiphertext (a truncated message).
 */
import { concatBytes, KeyportError } from '@keyport/core';

export { concatBytes };

export class NeedMoreBytes extends Error {
  override readonly name = 'NeedMoreBytes';
}

export function invalidCiphertext(message: string, cause?: unknown): KeyportError {
  return new KeyportError('InvalidCiphertext', message, cause === undefined ? {} : { cause });
}

export class ByteReader {
  private at = 0;
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get offset(): number {
    return this.at;
  }

  get remaining(): number {
    return this.bytes.length - this.at;
  }

  private need(n: number): void {
    if (this.at + n > this.bytes.length) throw new NeedMoreBytes();
  }

  u8(): number {
    this.need(1);
    return this.view.getUint8(this.at++);
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.at);
    this.at += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.at);
    this.at += 4;
    return v;
  }

  /** A uint64 that must fit in a safe integer (content lengths). */
  u64(): number {
    this.need(8);
    const hi = this.view.getUint32(this.at);
    const lo = this.view.getUint32(this.at + 4);
    this.at += 8;
    if (hi > 0x1fffff) throw invalidCiphertext('content length does not fit in a safe integer');
    return hi * 0x1_0000_0000 + lo;
  }

  /** A view of bytes already read, from `start` to `end`. */
  span(start: number, end: number): Uint8Array {
    return this.bytes.subarray(start, end);
  }

  /** A view (not a copy) of the next `n` bytes. */
  take(n: number): Uint8Array {
    this.need(n);
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
}

/**
 * The big-endian u32 at `at`. Not a DataView: the small arrays frame prefixes are copied into
 * live on V8's heap, and reading their `.buffer` moves each one off it (~1 us per frame).
 */
export function u32be(b: Uint8Array, at: number): number {
  return (
    (((b[at] as number) << 24) |
      ((b[at + 1] as number) << 16) |
      ((b[at + 2] as number) << 8) |
      (b[at + 3] as number)) >>>
    0
  );
}

/**
 * The big-endian u64 at `at`, as a number: exact up to 2^53, approximate above (callers compare
 * it with a limit far below that, so an approximate value is still refused).
 */
export function u64be(b: Uint8Array, at: number): number {
  return u32be(b, at) * 0x1_0000_0000 + u32be(b, at + 4);
}

/** Appends big-endian fields into a growing list of chunks, then joins once. */
export class ByteWriter {
  private readonly parts: Uint8Array[] = [];
  private size = 0;

  private push(b: Uint8Array): this {
    this.parts.push(b);
    this.size += b.length;
    return this;
  }

  u8(v: number): this {
    return this.push(Uint8Array.of(v));
  }

  // Fields are written byte by byte, not through a DataView: V8 keeps arrays this small on its
  // heap, and reading `.buffer` (as a DataView needs) moves each one off it, ~1 us apiece.
  u16(v: number): this {
    return this.push(Uint8Array.of(v >>> 8, v & 0xff));
  }

  u32(v: number): this {
    return this.push(Uint8Array.of(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff));
  }

  bytes(b: Uint8Array): this {
    return this.push(b);
  }

  /** u16 length prefix, then the bytes. */
  short(b: Uint8Array): this {
    if (b.length > 0xffff) {
      throw new KeyportError('InvalidArgument', 'a length-prefixed field is longer than 65535 bytes');
    }
    return this.u16(b.length).push(b);
  }

  finish(): Uint8Array {
    return concatBytes(this.parts, this.size);
  }
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= (a[i] as number) ^ (b[i] as number);
  return d === 0;
}

export const utf8Encode = (s: string): Uint8Array => new TextEncoder().encode(s);

// ignoreBOM: by default a decoder drops a leading U+FEFF, so the keys `\uFEFFtenant` and `tenant`
// (different bytes, both in the authenticated header) would read as one string: the context
// would no longer re-serialize to what was authenticated (raw AES unwrap fails) and a
// `requiredContext` check would compare a string the sealer never wrote.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
export function utf8Decode(b: Uint8Array): string {
  try {
    return strictUtf8.decode(b);
  } catch (cause) {
    throw invalidCiphertext('a text field is not valid UTF-8', cause);
  }
}

/**
 * The first bytes of an object, read from its stream: enough to list the message's encrypted
 * data keys without a KMS call (AWS Encryption SDK format v1 and v2), so a worker knows what
 * an object needs. The bytes read are handed back in front of the rest of the stream.
 */
import type { EncryptedDataKey } from '@keyport/envelope';

export type HeaderPeek =
  | { readonly kind: 'envelope'; readonly version: 1 | 2; readonly edks: readonly EncryptedDataKey[] }
  | { readonly kind: 'other' };

/** Headers larger than this are not envelopes this tool migrates. */
export const MAX_HEADER_BYTES = 1024 * 1024;

/**
 * How far a header's bytes have been walked: the offset of the next encrypted data key, and how
 * many are still to come (undefined before the count is read), so a header arriving chunk by
 * chunk is walked once in all rather than again from its first byte at each chunk.
 */
interface HeaderScan {
  at: number;
  left: number | undefined;
  /** Where the first encrypted data key begins. */
  edksAt: number;
}

const newScan = (): HeaderScan => ({ at: 0, left: undefined, edksAt: 0 });

/**
 * Walks the header in `b[0..size)` from where `scan` stopped, reading lengths only (nothing is
 * copied): the offset where the EDK list ends, `'other'` when this is no envelope this tool
 * migrates, or `undefined` when more bytes are needed (`scan` then holds the progress made).
 */
function scanHeader(b: Buffer, size: number, scan: HeaderScan): number | 'other' | undefined {
  if (scan.left === undefined) {
    if (size < 1) return undefined;
    const version = b[0];
    let at: number;
    if (version === 0x02) {
      if (size < 1 + 2 + 32 + 2) return undefined;
      at = 1 + 2 + 32;
    } else if (version === 0x01) {
      if (size < 1 + 1 + 2 + 16 + 2) return undefined;
      if (b[1] !== 0x80) return 'other';
      at = 1 + 1 + 2 + 16;
    } else {
      return 'other';
    }
    const aad = b.readUInt16BE(at);
    at += 2;
    if (size < at + aad + 2) return undefined;
    at += aad;
    const count = b.readUInt16BE(at);
    at += 2;
    if (count === 0) return 'other';
    scan.left = count;
    scan.at = at;
    scan.edksAt = at;
  }
  while (scan.left > 0) {
    // One EDK: three length-prefixed fields (provider id, provider info, ciphertext), taken whole.
    let at = scan.at;
    for (let j = 0; j < 3; j++) {
      if (at + 2 > size) return undefined;
      at += 2 + b.readUInt16BE(at);
      if (at > size) return undefined;
    }
    scan.at = at;
    scan.left--;
  }
  return scan.at;
}

/** The EDKs of a header `scanHeader` found complete, from `edksAt`. */
function readEdks(b: Buffer, edksAt: number, end: number): EncryptedDataKey[] {
  const edks: EncryptedDataKey[] = [];
  for (let at = edksAt; at < end; ) {
    const fields: Buffer[] = [];
    for (let j = 0; j < 3; j++) {
      const n = b.readUInt16BE(at);
      at += 2;
      fields.push(Buffer.from(b.subarray(at, at + n)));
      at += n;
    }
    const [id, info, ciphertext] = fields as [Buffer, Buffer, Buffer];
    edks.push({ providerId: id.toString('utf8'), providerInfo: info, ciphertext });
  }
  return edks;
}

/** Parses the EDK list from `buf`; `undefined` means more bytes are needed. */
export function parseHeaderEdks(buf: Uint8Array): HeaderPeek | undefined {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const scan = newScan();
  const end = scanHeader(b, b.length, scan);
  if (end === undefined) return undefined;
  if (end === 'other') return { kind: 'other' };
  return { kind: 'envelope', version: b[0] === 0x02 ? 2 : 1, edks: readEdks(b, scan.edksAt, end) };
}

export interface PeekedStream {
  readonly header: HeaderPeek;
  /** The whole stream again: the bytes peeked, then the rest. Iterate once. */
  readonly body: AsyncIterable<Uint8Array>;
}

/**
 * Reads just enough of `source` to parse the header; never more than `MAX_HEADER_BYTES`. The
 * bytes are gathered in one buffer grown by doubling and walked on from where the last chunk
 * left off: gathering and parsing them again from the start at each chunk cost time quadratic
 * in the header (a stored header of 65,535 tiny EDKs, read in 1 KiB chunks, held the event loop,
 * and so every lane of the worker, for many seconds).
 */
export async function peekHeader(source: AsyncIterable<Uint8Array>): Promise<PeekedStream> {
  const it = source[Symbol.asyncIterator]();
  let buf = Buffer.alloc(0);
  let size = 0;
  const scan = newScan();
  let header: HeaderPeek | undefined;
  let ended = false;
  while (header === undefined) {
    const next = await it.next();
    if (next.done === true) ended = true;
    else {
      const chunk = next.value;
      if (size + chunk.byteLength > buf.length) {
        const grown = Buffer.allocUnsafe(Math.max(size + chunk.byteLength, 2 * buf.length, 4096));
        buf.copy(grown, 0, 0, size);
        buf = grown;
      }
      // Copied: the producer may reuse its buffer once we ask for the next chunk.
      buf.set(chunk, size);
      size += chunk.byteLength;
    }
    const end = scanHeader(buf, size, scan);
    if (end === 'other') header = { kind: 'other' };
    else if (end !== undefined)
      header = { kind: 'envelope', version: buf[0] === 0x02 ? 2 : 1, edks: readEdks(buf, scan.edksAt, end) };
    else if (ended || size >= MAX_HEADER_BYTES) header = { kind: 'other' };
  }
  let peeked: Buffer | undefined = buf.subarray(0, size);
  async function* replay(): AsyncGenerator<Uint8Array> {
    const first = peeked;
    peeked = undefined;
    if (first !== undefined && first.length > 0) yield first;
    if (ended) return;
    for (let n = await it.next(); n.done !== true; n = await it.next()) yield n.value;
  }
  return { header, body: replay() };
}

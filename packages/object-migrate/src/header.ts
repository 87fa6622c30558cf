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

/** Parses the EDK list from `buf`; `undefined` means more bytes are needed. */
export function parseHeaderEdks(buf: Uint8Array): HeaderPeek | undefined {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  let at = 0;
  const need = (n: number) => at + n <= b.length;
  if (!need(1)) return undefined;
  const version = b[at++];
  if (version === 0x02) {
    if (!need(2 + 32 + 2)) return undefined;
    at += 2 + 32;
  } else if (version === 0x01) {
    if (!need(1 + 2 + 16 + 2)) return undefined;
    if (b[at++] !== 0x80) return { kind: 'other' };
    at += 2 + 16;
  } else {
    return { kind: 'other' };
  }
  const aad = b.readUInt16BE(at);
  at += 2;
  if (!need(aad + 2)) return undefined;
  at += aad;
  const count = b.readUInt16BE(at);
  at += 2;
  if (count === 0) return { kind: 'other' };
  const edks: EncryptedDataKey[] = [];
  for (let i = 0; i < count; i++) {
    const fields: Buffer[] = [];
    for (let j = 0; j < 3; j++) {
      if (!need(2)) return undefined;
      const n = b.readUInt16BE(at);
      at += 2;
      if (!need(n)) return undefined;
      fields.push(Buffer.from(b.subarray(at, at + n)));
      at += n;
    }
    const [id, info, ciphertext] = fields as [Buffer, Buffer, Buffer];
    edks.push({ providerId: id.toString('utf8'), providerInfo: info, ciphertext });
  }
  return { kind: 'envelope', version: version === 0x02 ? 2 : 1, edks };
}

export interface PeekedStream {
  readonly header: HeaderPeek;
  /** The whole stream again: the bytes peeked, then the rest. Iterate once. */
  readonly body: AsyncIterable<Uint8Array>;
}

/** Reads just enough of `source` to parse the header; never more than `MAX_HEADER_BYTES`. */
export async function peekHeader(source: AsyncIterable<Uint8Array>): Promise<PeekedStream> {
  const it = source[Symbol.asyncIterator]();
  const seen: Buffer[] = [];
  let size = 0;
  let header: HeaderPeek | undefined;
  let ended = false;
  while (header === undefined) {
    const next = await it.next();
    if (next.done === true) {
      ended = true;
      header = parseHeaderEdks(Buffer.concat(seen, size)) ?? { kind: 'other' };
      break;
    }
    const chunk = Buffer.from(next.value);
    seen.push(chunk);
    size += chunk.length;
    header = parseHeaderEdks(Buffer.concat(seen, size));
    if (header === undefined && size >= MAX_HEADER_BYTES) header = { kind: 'other' };
  }
  async function* replay(): AsyncGenerator<Uint8Array> {
    yield* seen;
    seen.length = 0;
    if (ended) return;
    for (let n = await it.next(); n.done !== true; n = await it.next()) yield n.value;
  }
  return { header, body: replay() };
}

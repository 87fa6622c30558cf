/**
 * AES-GCM as the message body and header use it (data-format/message-body-aad.md):
 * the frame IV is the sequence number padded to 12 bytes, and the AAD is
 * `message id || content string || u32 sequence number || u64 content length`.
 */
import { createCipheriv, createDecipheriv, type KeyObject } from 'node:crypto';
import { KeyportError } from '@keyport/core';

/**
 * An AES key as the body and header use it: the derived key's bytes (a KeyObject costs more to
 * make than the cipher that uses it, per message) or a KeyObject. 32 bytes for every suite
 * keyport seals; 16 or 24 for the v1 AES-128 and AES-192 suites it reads.
 */
export type AeadKey = KeyObject | Uint8Array;

type GcmCipher = 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm';

/** The GCM cipher for a key's length (a wrong length then fails in `createCipheriv`). */
export function gcmCipher(key: AeadKey): GcmCipher {
  const length = key instanceof Uint8Array ? key.length : key.symmetricKeySize;
  return length === 16 ? 'aes-128-gcm' : length === 24 ? 'aes-192-gcm' : 'aes-256-gcm';
}

export const FRAME_STRING = 'AWSKMSEncryptionClient Frame';
export const FINAL_FRAME_STRING = 'AWSKMSEncryptionClient Final Frame';
export const SINGLE_BLOCK_STRING = 'AWSKMSEncryptionClient Single Block';

export function bodyAad(messageId: Uint8Array, contentString: string, seq: number, length: number): Buffer {
  const s = Buffer.byteLength(contentString);
  const aad = Buffer.allocUnsafe(messageId.length + s + 12);
  aad.set(messageId, 0);
  aad.write(contentString, messageId.length, 'latin1');
  let at = messageId.length + s;
  aad.writeUInt32BE(seq, at);
  at += 4;
  aad.writeUInt32BE(Math.floor(length / 0x1_0000_0000), at);
  aad.writeUInt32BE(length >>> 0, at + 4);
  return aad;
}

export function sequenceIv(seq: number): Buffer {
  const iv = Buffer.alloc(12);
  iv.writeUInt32BE(seq, 8);
  return iv;
}

/**
 * Bytes per `update` call on the bulk path. One large `update` makes OpenSSL's output go to a
 * fresh allocation the size of the input, which falls out of cache; slices this size stay in
 * L1/L2 (chosen by `bench/envelope.bench.mjs`, which measures several sizes).
 */
export const GCM_SLICE = 64 * 1024;

/**
 * Runs `cipher` over `input` in `GCM_SLICE` slices, writing the output into `out` at `at`.
 * GCM is a stream mode: each `update` returns exactly as many bytes as it was given.
 */
export function updateInto(
  cipher: { update(data: Uint8Array): Buffer },
  input: Uint8Array,
  out: Uint8Array,
  at: number,
): void {
  for (let i = 0; i < input.length; i += GCM_SLICE) {
    out.set(cipher.update(input.subarray(i, Math.min(input.length, i + GCM_SLICE))), at + i);
  }
}

/** Private memory that `readOnce` copies a slice of shared ciphertext into. */
const ONCE = Buffer.allocUnsafeSlow(GCM_SLICE);

/**
 * `slice` (at most `GCM_SLICE` bytes) as a decipher may read it: itself, or a private copy when it
 * lies in shared memory; valid until the next call. OpenSSL's AES-NI GCM decryption (CPUs
 * without VAES) reads each ciphertext block twice, once into GHASH and once for the counter
 * XOR: another thread writing a SharedArrayBuffer between the two reads made a frame decrypt to
 * bytes its tag never covered while the tag verified (measured with `OPENSSL_ia32cap` masking
 * AVX: a few opens in a hundred, another thread flipping one bit of the message). A copy is
 * read once, at memmove's speed; the same copy feeds the signature's hash.
 */
export function readOnce(slice: Uint8Array): Uint8Array {
  if (!(slice.buffer instanceof SharedArrayBuffer)) return slice;
  return ONCE.subarray(0, Buffer.from(slice.buffer, slice.byteOffset, slice.length).copy(ONCE, 0));
}

/** AES-GCM of `plaintext` written into `out` at `at` as ciphertext || tag. */
export function sealInto(
  key: AeadKey,
  iv: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
  out: Uint8Array,
  at: number,
): void {
  const c = createCipheriv(gcmCipher(key), key, iv, { authTagLength: 16 });
  c.setAAD(aad);
  updateInto(c, plaintext, out, at);
  c.final();
  out.set(c.getAuthTag(), at + plaintext.length);
}

/**
 * Decrypts `ciphertext` into `out` at `at`; false when the tag fails (the caller then discards
 * what was written).
 */
export function openInto(
  key: AeadKey,
  iv: Uint8Array,
  aad: Uint8Array,
  ciphertext: Uint8Array,
  tag: Uint8Array,
  out: Uint8Array,
  at: number,
): boolean {
  const d = createDecipheriv(gcmCipher(key), key, iv, { authTagLength: 16 });
  d.setAAD(aad);
  d.setAuthTag(tag);
  for (let i = 0; i < ciphertext.length; i += GCM_SLICE) {
    out.set(d.update(readOnce(ciphertext.subarray(i, Math.min(ciphertext.length, i + GCM_SLICE)))), at + i);
  }
  try {
    d.final();
    return true;
  } catch {
    return false;
  }
}

/** The GCM tag over `aad` alone (the header's authentication tag). */
export function gcmTag(key: AeadKey, iv: Uint8Array, aad: Uint8Array): Buffer {
  const c = createCipheriv(gcmCipher(key), key, iv, { authTagLength: 16 });
  c.setAAD(aad);
  c.final();
  return c.getAuthTag();
}

/** Decrypts and verifies; the plaintext is returned only when the tag verifies. */
export function gcmOpen(
  key: AeadKey,
  iv: Uint8Array,
  aad: Uint8Array,
  ciphertext: Uint8Array,
  tag: Uint8Array,
  what: string,
): Buffer {
  const d = createDecipheriv(gcmCipher(key), key, iv, { authTagLength: 16 });
  d.setAAD(aad);
  d.setAuthTag(tag);
  const out = ciphertext.length === 0 ? Buffer.alloc(0) : d.update(ciphertext);
  try {
    d.final();
  } catch (cause) {
    out.fill(0);
    throw new KeyportError('Integrity', `${what} failed authentication`, { cause });
  }
  return out;
}

/**
 * AES-GCM over the concatenation of `parts` (views, never joined): the pieces `update`
 * returned, one per `GCM_SLICE` of each part, then the tag. Nothing is copied.
 */
export function sealPieces(
  key: AeadKey,
  iv: Uint8Array,
  aad: Uint8Array,
  parts: readonly Uint8Array[],
): Buffer[] {
  const c = createCipheriv(gcmCipher(key), key, iv, { authTagLength: 16 });
  c.setAAD(aad);
  const out: Buffer[] = [];
  for (const part of parts) {
    for (let i = 0; i < part.length; i += GCM_SLICE) {
      out.push(c.update(part.subarray(i, Math.min(part.length, i + GCM_SLICE))));
    }
  }
  c.final();
  out.push(c.getAuthTag());
  return out;
}

/**
 * Decrypts `length` bytes of content followed by its 16-byte tag, given as the concatenation of
 * `parts` (views, never joined), in `GCM_SLICE` pieces; the pieces only when the tag verifies
 * (zeroed and undefined otherwise).
 */
export function openPieces(
  key: AeadKey,
  iv: Uint8Array,
  aad: Uint8Array,
  parts: readonly Uint8Array[],
  length: number,
): Buffer[] | undefined {
  const d = createDecipheriv(gcmCipher(key), key, iv, { authTagLength: 16 });
  d.setAAD(aad);
  const out: Buffer[] = [];
  const tag: Uint8Array[] = [];
  let at = 0;
  for (const part of parts) {
    const content = Math.min(part.length, Math.max(0, length - at));
    for (let i = 0; i < content; i += GCM_SLICE)
      out.push(d.update(readOnce(part.subarray(i, Math.min(content, i + GCM_SLICE)))));
    if (content < part.length) tag.push(part.subarray(content));
    at += part.length;
  }
  // The tag may span parts: its 16 bytes are the only ones ever joined.
  d.setAuthTag(tag.length === 1 ? (tag[0] as Uint8Array) : Buffer.concat(tag));
  try {
    d.final();
    return out;
  } catch {
    for (const p of out) p.fill(0);
    return undefined;
  }
}

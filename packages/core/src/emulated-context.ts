/**
 * Context binding for keys whose provider has no AAD (Azure RSA keys, any RSA-only driver):
 * keyport encrypts under a fresh AES-256-GCM content key with `encodeContext(context)` as AAD,
 * and the provider wraps only the content key. A changed context then fails the tag exactly as
 * on providers with native AAD (InvalidCiphertext), and any plaintext length works. The body
 * goes in the keyport frame as mechanism WRAPPED_KEY_AES_256_GCM:
 *
 *   u16 w | wrapped content key (w bytes) | IV (12) | ciphertext | tag (16)
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { concatBytes, GCM_IV_BYTES, GCM_TAG_BYTES } from './ciphertext-frame.js';
import { encodeContext } from './context.js';
import { KeyportError } from './errors.js';
import { secretKey } from './secret-key.js';
import type { EncryptionContext } from './types.js';

const CONTENT_KEY_BYTES = 32;

const invalid = (why: string): KeyportError =>
  new KeyportError('InvalidCiphertext', `ciphertext does not open: ${why}`);

/** Seals `plaintext` under a fresh content key that `wrap` hands to the provider. */
export async function sealBoundToContext(
  plaintext: Uint8Array,
  context: EncryptionContext | undefined,
  wrap: (contentKey: Uint8Array) => Promise<Uint8Array>,
): Promise<Uint8Array> {
  const aad = encodeContext(context);
  const contentKey = randomBytes(CONTENT_KEY_BYTES);
  try {
    const wrapped = await wrap(contentKey);
    if (wrapped.length === 0 || wrapped.length > 0xffff)
      throw new KeyportError('Internal', 'the wrapped content key has an impossible length');
    const iv = randomBytes(GCM_IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', secretKey(contentKey), iv).setAAD(aad);
    const length = Uint8Array.of(wrapped.length >> 8, wrapped.length & 0xff);
    return concatBytes([length, wrapped, iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  } finally {
    contentKey.fill(0);
  }
}

/** The parts of a bound body; InvalidCiphertext when malformed. */
export function parseBoundBody(body: Uint8Array): {
  wrappedKey: Uint8Array;
  iv: Uint8Array;
  ciphertext: Uint8Array;
  tag: Uint8Array;
} {
  if (body.length < 2) throw invalid('truncated');
  const w = Buffer.from(body.buffer, body.byteOffset, body.byteLength).readUInt16BE(0);
  if (w === 0 || body.length < 2 + w + GCM_IV_BYTES + GCM_TAG_BYTES) throw invalid('truncated');
  const at = 2 + w;
  return {
    wrappedKey: body.subarray(2, at),
    iv: body.subarray(at, at + GCM_IV_BYTES),
    ciphertext: body.subarray(at + GCM_IV_BYTES, body.length - GCM_TAG_BYTES),
    tag: body.subarray(body.length - GCM_TAG_BYTES),
  };
}

/** Opens a bound body: `unwrap` asks the provider for the content key. */
export async function openBoundToContext(
  body: Uint8Array,
  context: EncryptionContext | undefined,
  unwrap: (wrappedKey: Uint8Array) => Promise<Uint8Array>,
): Promise<Uint8Array> {
  const aad = encodeContext(context);
  const parts = parseBoundBody(body);
  // The provider's own bytes, zeroed here once used: a copy would leave them behind (and a
  // short `Buffer.from` copy would sit in Node's shared Buffer pool).
  const contentKey = await unwrap(parts.wrappedKey);
  try {
    if (contentKey.length !== CONTENT_KEY_BYTES) throw invalid('wrong content key');
    const decipher = createDecipheriv('aes-256-gcm', secretKey(contentKey), parts.iv).setAAD(aad);
    decipher.setAuthTag(parts.tag);
    // `update` returns memory of its own (never the pool); `final` adds nothing for GCM. A
    // plaintext whose tag fails is zeroed before it is dropped.
    const plaintext = decipher.update(parts.ciphertext);
    try {
      decipher.final();
    } catch {
      plaintext.fill(0);
      throw invalid('wrong key, altered bytes or a different context');
    }
    return new Uint8Array(plaintext.buffer, plaintext.byteOffset, plaintext.length);
  } finally {
    contentKey.fill(0);
  }
}

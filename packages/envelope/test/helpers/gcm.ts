/**
 * AES-256-GCM written straight with node:crypto, for tests that build messages by hand: an
 * encoder independent of the code under test (src/aead.ts).
 */
import { createCipheriv, type KeyObject } from 'node:crypto';

export function gcmSeal(
  key: KeyObject | Uint8Array,
  iv: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
): { ciphertext: Buffer; tag: Buffer } {
  const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
  c.setAAD(aad);
  const ciphertext = plaintext.length === 0 ? Buffer.alloc(0) : c.update(plaintext);
  c.final();
  return { ciphertext, tag: c.getAuthTag() };
}

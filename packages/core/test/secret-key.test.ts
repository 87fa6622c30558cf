import { createCipheriv, KeyObject, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BYTE_KEYS_THROW, secretKey } from '../src/index.js';

describe('secretKey', () => {
  it('hands node:crypto a KeyObject exactly on the Node lines whose byte keys throw (24, 25)', () => {
    const major = Number(process.versions.node.split('.')[0]);
    expect(BYTE_KEYS_THROW).toBe(major === 24 || major === 25);
    const bytes = randomBytes(32);
    const key = secretKey(bytes);
    if (BYTE_KEYS_THROW) {
      expect(key).toBeInstanceOf(KeyObject);
      expect((key as KeyObject).type).toBe('secret');
      expect(Buffer.from((key as KeyObject).export()).equals(bytes)).toBe(true);
    } else {
      expect(key).toBe(bytes);
    }
  });

  it('the key it gives seals as the bytes do, even once the caller has zeroed its bytes', () => {
    const bytes = randomBytes(32);
    const iv = randomBytes(12);
    const tagOf = (k: KeyObject | Uint8Array) => {
      const c = createCipheriv('aes-256-gcm', k, iv).setAAD(Buffer.from('aad'));
      c.final();
      return c.getAuthTag();
    };
    const want = tagOf(Buffer.from(bytes));
    const key = secretKey(bytes);
    // A KeyObject holds its own copy; handed back, the bytes are the caller's to zero later.
    if (key instanceof KeyObject) bytes.fill(0);
    expect(tagOf(key).equals(want)).toBe(true);
  });
});

import { describe, expect, it } from 'vitest';
import { hsmToLocalCiphertext, localToHsmCiphertext } from '../src/index.js';

describe('local <-> HSM ciphertext framing', () => {
  const body = Buffer.from(Array.from({ length: 40 }, (_, i) => i));
  const local = new Uint8Array(Buffer.concat([Buffer.from('0100000001', 'hex'), body]));

  it('rewrites only the key version in the header and leaves the input untouched', () => {
    const hsm = Buffer.from(localToHsmCiphertext(local, 0x01020304));
    expect(hsm.subarray(0, 5).toString('hex')).toBe('0101020304');
    expect(hsm.subarray(5).equals(body)).toBe(true);
    expect(Buffer.from(local.subarray(0, 5)).toString('hex')).toBe('0100000001');
    expect(Buffer.from(hsmToLocalCiphertext(hsm, 1)).equals(Buffer.from(local))).toBe(true);
  });

  it('refuses what is not an AES-GCM ciphertext, and impossible versions', () => {
    const rsa = new Uint8Array(Buffer.concat([Buffer.from('0200000001', 'hex'), body]));
    expect(() => localToHsmCiphertext(rsa, 1)).toThrow(
      expect.objectContaining({ code: 'InvalidCiphertext' }),
    );
    expect(() => hsmToLocalCiphertext(local.subarray(0, 20), 1)).toThrow(/not an AES-GCM/);
    for (const version of [0, -1, 1.5, 2 ** 32]) {
      expect(() => localToHsmCiphertext(local, version)).toThrow(
        expect.objectContaining({ code: 'InvalidArgument' }),
      );
    }
  });
});

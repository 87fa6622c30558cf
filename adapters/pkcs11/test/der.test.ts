import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ecdsaDerToRaw, ecdsaRawToDer, readCiphertext, versionId, versionOfId } from '../src/index.js';

describe('ECDSA signature encodings', () => {
  for (const [curve, size] of [
    ['P-256', 32],
    ['P-384', 48],
  ] as const) {
    it(`${curve}: raw r||s → DER verifies with node:crypto, and DER → raw round-trips`, () => {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
      for (let i = 0; i < 20; i++) {
        const message = randomBytes(40);
        const raw = sign(size === 32 ? 'sha256' : 'sha384', message, {
          key: privateKey,
          dsaEncoding: 'ieee-p1363',
        });
        const der = ecdsaRawToDer(raw);
        expect(verify(size === 32 ? 'sha256' : 'sha384', message, publicKey, der)).toBe(true);
        expect(ecdsaDerToRaw(der, size)?.equals(raw)).toBe(true);
      }
    });
  }

  it('refuses malformed DER', () => {
    expect(ecdsaDerToRaw(Buffer.from('3006020101020101ff', 'hex'), 32)).toBeUndefined();
    expect(ecdsaDerToRaw(Buffer.alloc(0), 32)).toBeUndefined();
    expect(ecdsaDerToRaw(randomBytes(70), 32)).toBeUndefined();
    const tooLong = Buffer.concat([
      Buffer.from('3025022101', 'hex'),
      Buffer.alloc(32, 1),
      Buffer.from('020101', 'hex'),
    ]);
    expect(ecdsaDerToRaw(tooLong, 32)).toBeUndefined();
  });
});

describe('the CKA_ID version scheme', () => {
  it('is "kpv1" + u32be version and reads back', () => {
    expect(versionId(3).toString('hex')).toBe('6b70763100000003');
    expect(versionOfId(versionId(70000))).toBe(70000);
    expect(versionOfId(Buffer.from('6b70763100000000', 'hex'))).toBeUndefined();
    expect(versionOfId(Buffer.from([1]))).toBeUndefined();
  });
});

describe('the ciphertext header', () => {
  it('rejects unknown formats, version 0 and short AES-GCM bodies', () => {
    expect(
      readCiphertext(Buffer.from('0900000001aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'hex')),
    ).toBeUndefined();
    expect(
      readCiphertext(Buffer.concat([Buffer.from('0100000000', 'hex'), Buffer.alloc(40)])),
    ).toBeUndefined();
    expect(
      readCiphertext(Buffer.concat([Buffer.from('0100000001', 'hex'), Buffer.alloc(27)])),
    ).toBeUndefined();
    expect(readCiphertext(Buffer.concat([Buffer.from('0100000002', 'hex'), Buffer.alloc(28)]))?.version).toBe(
      2,
    );
  });
});

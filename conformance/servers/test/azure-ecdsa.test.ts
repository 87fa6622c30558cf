import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ecdsaSignDigest, ecdsaVerifyDigest } from '../src/azure/ecdsa.js';

// The digest-level ECDSA must interoperate with node:crypto's hash-then-sign ECDSA.
const cases = [
  ['P-256', 'prime256v1', 'sha256'],
  ['P-384', 'secp384r1', 'sha384'],
  ['P-521', 'secp521r1', 'sha512'],
  ['P-256K', 'secp256k1', 'sha256'],
] as const;

describe('ecdsa over a digest', () => {
  for (const [crv, namedCurve, hash] of cases) {
    it(`${crv}: signatures interoperate with node:crypto both ways`, () => {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve });
      const jwk = privateKey.export({ format: 'jwk' });
      const x = Buffer.from(jwk.x ?? '', 'base64url');
      const y = Buffer.from(jwk.y ?? '', 'base64url');
      const message = Buffer.from('keyport');
      const digest = createHash(hash).update(message).digest();

      const ours = ecdsaSignDigest(crv, Buffer.from(jwk.d ?? '', 'base64url'), digest);
      expect(verify(hash, message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, ours)).toBe(true);

      const theirs = sign(hash, message, { key: privateKey, dsaEncoding: 'ieee-p1363' });
      expect(ecdsaVerifyDigest(crv, x, y, digest, theirs)).toBe(true);
      expect(ecdsaVerifyDigest(crv, x, y, Buffer.alloc(digest.length), theirs)).toBe(false);
    });
  }
});

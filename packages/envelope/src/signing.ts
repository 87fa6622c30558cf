/**
 * ECDSA P-384 / SHA-384 message signatures (suites 0x0378 and 0x0578). The verification key
 * travels in the encryption context under `aws-crypto-public-key` as the base64 of the
 * SEC 1 compressed point; the DER signature is the message footer.
 */
import {
  createPublicKey,
  createSign,
  createVerify,
  ECDH,
  generateKeyPairSync,
  type KeyObject,
  type Sign,
  type Verify,
} from 'node:crypto';
import { invalidCiphertext } from './bytes.js';

export interface SigningKey {
  readonly privateKey: KeyObject;
  /** base64 of the compressed public point, the context value. */
  readonly publicKeyBase64: string;
}

export function generateSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const jwk = publicKey.export({ format: 'jwk' });
  const x = Buffer.from(jwk.x as string, 'base64url');
  const y = Buffer.from(jwk.y as string, 'base64url');
  const uncompressed = Buffer.concat([Buffer.of(4), x, y]);
  const compressed = ECDH.convertKey(uncompressed, 'secp384r1', undefined, undefined, 'compressed') as Buffer;
  return { privateKey, publicKeyBase64: compressed.toString('base64') };
}

export function verificationKeyFromContext(base64: string | undefined): KeyObject {
  if (base64 === undefined) throw invalidCiphertext('signed message without a public key in its context');
  const compressed = Buffer.from(base64, 'base64');
  // Canonical base64 of a 49-byte SEC 1 compressed point, nothing looser.
  if (
    compressed.length !== 49 ||
    (compressed[0] !== 2 && compressed[0] !== 3) ||
    compressed.toString('base64') !== base64
  ) {
    throw invalidCiphertext('the public key in the context is not a compressed P-384 point');
  }
  try {
    const raw = ECDH.convertKey(compressed, 'secp384r1', undefined, undefined, 'uncompressed') as Buffer;
    return createPublicKey({
      key: {
        kty: 'EC',
        crv: 'P-384',
        x: raw.subarray(1, 49).toString('base64url'),
        y: raw.subarray(49, 97).toString('base64url'),
      },
      format: 'jwk',
    });
  } catch (cause) {
    throw invalidCiphertext('the public key in the context is not a P-384 point', cause);
  }
}

export function newSigner(): Sign {
  return createSign('sha384');
}

export function newVerifier(): Verify {
  return createVerify('sha384');
}

/**
 * ECDSA message signatures: P-384 / SHA-384 (suites 0x0346, 0x0378, 0x0578; the one keyport
 * signs with) and P-256 / SHA-256 (0x0214, read only). The verification key travels in the
 * encryption context under `aws-crypto-public-key` as the base64 of the SEC 1 compressed point;
 * the DER signature is the message footer.
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

/** Per curve: OpenSSL's name, the compressed point's length, the signature's hash. */
const CURVES = {
  'P-256': { openssl: 'prime256v1', compressed: 33, hash: 'sha256' },
  'P-384': { openssl: 'secp384r1', compressed: 49, hash: 'sha384' },
} as const;

export type SignatureCurve = keyof typeof CURVES;

export function verificationKeyFromContext(base64: string | undefined, curve: SignatureCurve): KeyObject {
  if (base64 === undefined) throw invalidCiphertext('signed message without a public key in its context');
  const { openssl, compressed: length } = CURVES[curve];
  const compressed = Buffer.from(base64, 'base64');
  // Canonical base64 of a SEC 1 compressed point, nothing looser.
  if (
    compressed.length !== length ||
    (compressed[0] !== 2 && compressed[0] !== 3) ||
    compressed.toString('base64') !== base64
  ) {
    throw invalidCiphertext(`the public key in the context is not a compressed ${curve} point`);
  }
  const half = length - 1;
  try {
    const raw = ECDH.convertKey(compressed, openssl, undefined, undefined, 'uncompressed') as Buffer;
    return createPublicKey({
      key: {
        kty: 'EC',
        crv: curve,
        x: raw.subarray(1, 1 + half).toString('base64url'),
        y: raw.subarray(1 + half, 1 + 2 * half).toString('base64url'),
      },
      format: 'jwk',
    });
  } catch (cause) {
    throw invalidCiphertext(`the public key in the context is not a ${curve} point`, cause);
  }
}

/** A signer for keyport's signed suite (P-384 / SHA-384). */
export function newSigner(): Sign {
  return createSign('sha384');
}

export function newVerifier(curve: SignatureCurve): Verify {
  return createVerify(CURVES[curve].hash);
}

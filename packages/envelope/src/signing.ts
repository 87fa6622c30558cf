/**
 * ECDSA message signatures: P-384 / SHA-384 (suites 0x0346, 0x0378, 0x0578; the one keyport
 * signs with) and P-256 / SHA-256 (0x0214, read only). The verification key travels in the
 * encryption context under `aws-crypto-public-key` as the base64 of the SEC 1 compressed point;
 * the DER signature is the message footer.
 */
import {
  createSign,
  createVerify,
  generateKeyPairSync,
  type KeyObject,
  type Sign,
  type Verify,
} from 'node:crypto';
import { invalidCiphertext } from './bytes.js';
import { compressPoint, EC_CURVES, publicKeyFromPoint } from './ec-points.js';

export interface SigningKey {
  readonly privateKey: KeyObject;
  /** base64 of the compressed public point, the context value. */
  readonly publicKeyBase64: string;
}

export function generateSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  return { privateKey, publicKeyBase64: compressPoint(publicKey, 'P-384').toString('base64') };
}

/** The signature's hash per curve. */
const HASH = { 'P-256': 'sha256', 'P-384': 'sha384' } as const;

export type SignatureCurve = keyof typeof HASH;

export function verificationKeyFromContext(base64: string | undefined, curve: SignatureCurve): KeyObject {
  if (base64 === undefined) throw invalidCiphertext('signed message without a public key in its context');
  const compressed = Buffer.from(base64, 'base64');
  // Canonical base64 of a SEC 1 compressed point, nothing looser.
  if (compressed.length !== EC_CURVES[curve].compressed || compressed.toString('base64') !== base64) {
    throw invalidCiphertext(`the public key in the context is not a compressed ${curve} point`);
  }
  const key = publicKeyFromPoint(compressed, curve);
  if (key === undefined) throw invalidCiphertext(`the public key in the context is not a ${curve} point`);
  return key;
}

/** A signer for keyport's signed suite (P-384 / SHA-384). */
export function newSigner(): Sign {
  return createSign('sha384');
}

export function newVerifier(curve: SignatureCurve): Verify {
  return createVerify(HASH[curve]);
}

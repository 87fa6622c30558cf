/**
 * SEC 1 compressed points of the NIST curves, as the message format carries them (a signature
 * verification key in the context, both parties' keys in a raw ECDH EDK).
 */
import { createPublicKey, ECDH, type KeyObject } from 'node:crypto';

export type EcCurve = 'P-256' | 'P-384' | 'P-521';

/** OpenSSL's name and the compressed point's length, per curve. */
export const EC_CURVES = {
  'P-256': { openssl: 'prime256v1', compressed: 33 },
  'P-384': { openssl: 'secp384r1', compressed: 49 },
  'P-521': { openssl: 'secp521r1', compressed: 67 },
} as const satisfies Record<EcCurve, { openssl: string; compressed: number }>;

/** The compressed point of an EC public key on `curve`. */
export function compressPoint(key: KeyObject, curve: EcCurve): Buffer {
  const jwk = key.export({ format: 'jwk' });
  const x = Buffer.from(jwk.x as string, 'base64url');
  const y = Buffer.from(jwk.y as string, 'base64url');
  const uncompressed = Buffer.concat([Buffer.of(4), x, y]);
  return ECDH.convertKey(
    uncompressed,
    EC_CURVES[curve].openssl,
    undefined,
    undefined,
    'compressed',
  ) as Buffer;
}

/**
 * The public key of a compressed point on `curve`; undefined when the bytes are not one (wrong
 * length or prefix, or no such point on the curve).
 */
export function publicKeyFromPoint(point: Uint8Array, curve: EcCurve): KeyObject | undefined {
  const { openssl, compressed: length } = EC_CURVES[curve];
  if (point.length !== length || (point[0] !== 2 && point[0] !== 3)) return undefined;
  try {
    const raw = ECDH.convertKey(point, openssl, undefined, undefined, 'uncompressed') as Buffer;
    const half = length - 1;
    return createPublicKey({
      key: {
        kty: 'EC',
        crv: curve,
        x: raw.subarray(1, 1 + half).toString('base64url'),
        y: raw.subarray(1 + half).toString('base64url'),
      },
      format: 'jwk',
    });
  } catch {
    return undefined;
  }
}

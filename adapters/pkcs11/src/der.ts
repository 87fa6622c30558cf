/**
 * Byte formats at the PKCS#11 boundary: ECDSA signatures (PKCS#11 returns raw r||s, keyport
 * speaks DER), EC curve parameters (DER OIDs in CKA_EC_PARAMS), and public keys as SPKI DER,
 * built from CKA_MODULUS/CKA_PUBLIC_EXPONENT or CKA_EC_POINT through node:crypto's JWK import.
 */
import { createPublicKey } from 'node:crypto';

export const CURVES = {
  EC_P256: { oid: Buffer.from('06082a8648ce3d030107', 'hex'), crv: 'P-256', size: 32 },
  EC_P384: { oid: Buffer.from('06052b81040022', 'hex'), crv: 'P-384', size: 48 },
} as const;

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  if (n < 0x100) return Buffer.from([0x81, n]);
  return Buffer.from([0x82, n >> 8, n & 0xff]);
}

function derInteger(bytes: Uint8Array): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  let body = Buffer.from(bytes.subarray(i));
  if ((body[0] ?? 0) & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return Buffer.concat([Buffer.from([0x02]), derLength(body.length), body]);
}

/** Raw r||s (as CKM_ECDSA returns it) → DER `SEQUENCE { INTEGER r, INTEGER s }`. */
export function ecdsaRawToDer(raw: Uint8Array): Buffer {
  const half = raw.length / 2;
  const body = Buffer.concat([derInteger(raw.subarray(0, half)), derInteger(raw.subarray(half))]);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}

/**
 * DER ECDSA signature → raw r||s of `size`-byte halves; undefined when it is not one. Strict DER
 * only (minimal lengths, minimal non-negative INTEGERs), as OpenSSL (node:crypto, the local
 * provider) verifies: a BER reading would accept many encodings of one signature (a zero
 * prepended to r, a long-form length), making signatures malleable — a caller deduplicating or
 * indexing by signature bytes would see a "new" valid signature the key never made.
 */
export function ecdsaDerToRaw(der: Uint8Array, size: number): Buffer | undefined {
  let at = 0;
  const readLen = (): number | undefined => {
    const first = der[at++];
    if (first === undefined) return undefined;
    if (first < 0x80) return first;
    const count = first & 0x7f;
    if (count === 0 || count > 2) return undefined;
    let n = 0;
    for (let i = 0; i < count; i++) {
      const b = der[at++];
      if (b === undefined) return undefined;
      n = (n << 8) | b;
    }
    // The long form only where the short one cannot say it, in as few bytes as it takes.
    return n < 0x80 || (count === 2 && n < 0x100) ? undefined : n;
  };
  if (der[at++] !== 0x30) return undefined;
  const seqLen = readLen();
  if (seqLen === undefined || at + seqLen !== der.length) return undefined;
  const out = Buffer.alloc(size * 2);
  for (let k = 0; k < 2; k++) {
    if (der[at++] !== 0x02) return undefined;
    const len = readLen();
    if (len === undefined || len === 0 || at + len > der.length) return undefined;
    let int = der.subarray(at, at + len);
    at += len;
    // r and s are positive: a set top bit is a negative INTEGER; a leading zero is allowed only
    // before a byte with its top bit set (minimal two's complement).
    if (((int[0] ?? 0) & 0x80) !== 0) return undefined;
    if (int.length > 1 && int[0] === 0) {
      if (((int[1] ?? 0) & 0x80) === 0) return undefined;
      int = int.subarray(1);
    }
    if (int.length > size) return undefined;
    out.set(int, k * size + size - int.length);
  }
  return at === der.length ? out : undefined;
}

const b64url = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

export function rsaSpki(modulus: Uint8Array, exponent: Uint8Array): Buffer {
  return createPublicKey({
    key: { kty: 'RSA', n: b64url(modulus), e: b64url(exponent) },
    format: 'jwk',
  }).export({
    type: 'spki',
    format: 'der',
  });
}

/** CKA_EC_POINT is a DER OCTET STRING around the uncompressed point (04 || x || y). */
export function ecSpki(spec: keyof typeof CURVES, ecPoint: Uint8Array): Buffer {
  const { crv, size } = CURVES[spec];
  let point = Buffer.from(ecPoint);
  if (point[0] === 0x04 && point.length !== 1 + 2 * size) point = point.subarray(point[1] === 0x81 ? 3 : 2);
  if (point[0] !== 0x04 || point.length !== 1 + 2 * size) throw new Error('unexpected CKA_EC_POINT encoding');
  const x = point.subarray(1, 1 + size);
  const y = point.subarray(1 + size);
  return createPublicKey({ key: { kty: 'EC', crv, x: b64url(x), y: b64url(y) }, format: 'jwk' }).export({
    type: 'spki',
    format: 'der',
  });
}

/** DigestInfo prefix for SHA-256 (RFC 8017 §9.2), for PKCS#1 v1.5 signing of a given digest. */
export const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');

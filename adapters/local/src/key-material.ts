/**
 * Key material per spec: AES-256 and HMAC keys are raw bytes, RSA and EC keys are PKCS#8
 * DER. Everything here returns Buffers the caller owns and wipes.
 */
import { createPrivateKey, createPublicKey, generateKeyPair, type KeyObject, randomBytes } from 'node:crypto';
import type { KeySpec } from '@keyport/core';
import { abortError, localError, throwIfAborted } from './errors.js';

const RSA_BITS: Partial<Record<KeySpec, number>> = { RSA_2048: 2048, RSA_3072: 3072, RSA_4096: 4096 };
const EC_CURVE: Partial<Record<KeySpec, string>> = { EC_P256: 'prime256v1', EC_P384: 'secp384r1' };
const NODE_CURVE: Partial<Record<KeySpec, string>> = { EC_P256: 'P-256', EC_P384: 'P-384' };

export function isSymmetric(spec: KeySpec): boolean {
  return spec === 'AES_256' || spec === 'HMAC_256';
}

function generatePkcs8(
  type: 'rsa' | 'ec',
  options: { modulusLength: number } | { namedCurve: string },
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, _pub: KeyObject, priv: KeyObject) =>
      err ? reject(err) : resolve(priv.export({ format: 'der', type: 'pkcs8' }));
    if (type === 'rsa')
      generateKeyPair('rsa', { ...(options as { modulusLength: number }), publicExponent: 65537 }, done);
    else generateKeyPair('ec', options as { namedCurve: string }, done);
  });
}

/**
 * Fresh material for a new key version. RSA generation can take seconds: an abort or deadline
 * rejects at once (the pair still being generated is wiped when it arrives), so nothing is
 * written for a call whose caller has already been told it failed.
 */
export async function generateMaterial(spec: KeySpec, signal?: AbortSignal): Promise<Buffer> {
  throwIfAborted(signal);
  if (isSymmetric(spec)) return randomBytes(32);
  const bits = RSA_BITS[spec];
  const pending =
    bits !== undefined
      ? generatePkcs8('rsa', { modulusLength: bits })
      : generatePkcs8('ec', { namedCurve: NODE_CURVE[spec] as string });
  if (signal === undefined) return pending;
  return new Promise<Buffer>((resolve, reject) => {
    const onAbort = (): void => {
      pending.then(
        (late) => late.fill(0),
        () => undefined,
      );
      reject(abortError(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    pending.then(
      (material) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) material.fill(0);
        else resolve(material);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

export function privateKeyFrom(material: Buffer): KeyObject {
  return createPrivateKey({ key: material, format: 'der', type: 'pkcs8' });
}

export function publicKeyDer(material: Buffer): Buffer {
  return createPublicKey(privateKeyFrom(material)).export({ format: 'der', type: 'spki' });
}

/** Does this private key have the type and size the spec promises? */
function matchesSpec(key: KeyObject, spec: KeySpec): boolean {
  const details = key.asymmetricKeyDetails;
  const bits = RSA_BITS[spec];
  if (bits !== undefined) return key.asymmetricKeyType === 'rsa' && details?.modulusLength === bits;
  const curve = EC_CURVE[spec];
  return curve !== undefined && key.asymmetricKeyType === 'ec' && details?.namedCurve === curve;
}

/**
 * Does stored material have the structure its spec declares? AES_256 32 raw bytes, HMAC_256
 * 32–64, RSA a PKCS#8 RSA key of the spec's modulus, EC a PKCS#8 EC key on the spec's curve.
 * Checked when a keystore body is opened: a length check alone let an EC key hold RSA
 * material and sign "ECDSA" with it.
 */
export function materialMatchesSpec(spec: KeySpec, material: Buffer): boolean {
  if (spec === 'AES_256') return material.length === 32;
  if (spec === 'HMAC_256') return material.length >= 32 && material.length <= 64;
  if (material.length === 0 || material.length > 16 * 1024) return false;
  try {
    return matchesSpec(privateKeyFrom(material), spec);
  } catch {
    return false;
  }
}

/** Is this a PKCS#8 RSA private key of `bits`? (import wrapping keys) */
export function isRsaPkcs8(material: Buffer, bits: number): boolean {
  try {
    const key = privateKeyFrom(material);
    return key.asymmetricKeyType === 'rsa' && key.asymmetricKeyDetails?.modulusLength === bits;
  } catch {
    return false;
  }
}

/**
 * Checks imported material against the key's spec: AES_256 exactly 32 bytes, HMAC_256
 * 32–64 bytes, EC a PKCS#8 DER private key on the right curve. Throws InvalidArgument.
 */
export function checkImportedMaterial(spec: KeySpec, material: Buffer, keyUri: string): void {
  if (spec === 'AES_256') {
    if (material.length !== 32)
      throw localError('InvalidArgument', 'AES_256 material must be 32 bytes', keyUri);
    return;
  }
  if (spec === 'HMAC_256') {
    if (material.length < 32 || material.length > 64) {
      throw localError('InvalidArgument', 'HMAC_256 material must be 32 to 64 bytes', keyUri);
    }
    return;
  }
  let key: KeyObject;
  try {
    key = privateKeyFrom(material);
  } catch {
    throw localError('InvalidArgument', `${spec} material must be a PKCS#8 DER private key`, keyUri);
  }
  if (!matchesSpec(key, spec)) {
    throw localError('InvalidArgument', `imported private key does not match spec ${spec}`, keyUri);
  }
}

/** Specs whose material fits in one RSAES-OAEP-SHA-256 block of the 3072-bit wrapping key. */
export const IMPORTABLE_SPECS: readonly KeySpec[] = ['AES_256', 'HMAC_256', 'EC_P256', 'EC_P384'];

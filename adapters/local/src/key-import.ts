/**
 * BYOK, as cloud KMSs do it: the keystore publishes an RSA-3072 wrapping public key and an
 * import token (valid 24 h); the caller wraps its key material with RSAES-OAEP-SHA-256 under
 * that key and hands back the wrapped bytes and the token. Material larger than one OAEP
 * block (RSA private keys) would need RSA_AES_KEY_WRAP, which is not offered.
 */
import {
  constants,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  privateDecrypt,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import { UnsupportedError } from '@keyport/core';
import { LOCAL_CAPABILITIES } from './capabilities.js';
import { localError, PROVIDER_NAME } from './errors.js';
import { requireState } from './key-state.js';
import type { StoredImportJob, StoredKey } from './model.js';

export const WRAPPING_KEY_BITS = 3072;

/** A new wrapping key pair and token; the private half is kept in the keystore until import. */
export async function newImportJob(expiresAt: Date): Promise<StoredImportJob> {
  const pkcs8 = await new Promise<Buffer>((resolve, reject) => {
    generateKeyPair('rsa', { modulusLength: WRAPPING_KEY_BITS, publicExponent: 65537 }, (err, _pub, priv) =>
      err ? reject(err) : resolve(priv.export({ format: 'der', type: 'pkcs8' })),
    );
  });
  try {
    return {
      token: randomBytes(32).toString('base64'),
      wrappingKey: pkcs8.toString('base64'),
      expiresAt: expiresAt.toISOString(),
    };
  } finally {
    pkcs8.fill(0);
  }
}

export function wrappingPublicKey(job: StoredImportJob): Buffer {
  const der = Buffer.from(job.wrappingKey, 'base64');
  try {
    return createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })).export({
      format: 'der',
      type: 'spki',
    });
  } finally {
    der.fill(0);
  }
}

/** Checks the token and expiry, then unwraps the material (the caller wipes it). */
export function unwrapMaterial(
  job: StoredImportJob,
  wrapped: Uint8Array,
  token: Uint8Array | undefined,
  now: Date,
  keyUri: string,
): Buffer {
  const expected = Buffer.from(job.token, 'base64');
  if (token === undefined || token.length !== expected.length || !timingSafeEqual(expected, token)) {
    throw localError('InvalidArgument', 'import token does not match the current import parameters', keyUri);
  }
  if (now >= new Date(job.expiresAt)) {
    throw localError(
      'InvalidArgument',
      'import parameters have expired; call getImportParameters again',
      keyUri,
    );
  }
  const der = Buffer.from(job.wrappingKey, 'base64');
  try {
    const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    return privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, wrapped);
  } catch {
    throw localError(
      'InvalidCiphertext',
      'wrapped key material cannot be unwrapped with the import key',
      keyUri,
    );
  } finally {
    der.fill(0);
  }
}

export function checkImportAlgorithm(algorithm: string, uri: string): void {
  if (!LOCAL_CAPABILITIES.import.some((a) => a === algorithm)) {
    throw new UnsupportedError('import', 'the local provider wraps imports with RSAES_OAEP_SHA_256 only', {
      provider: PROVIDER_NAME,
      keyUri: uri,
    });
  }
}

/** Import applies to keys created with `external: true` that still wait for material. */
export function requireAwaitingImport(key: StoredKey, now: Date, uri: string): void {
  if (key.origin !== 'external') {
    throw localError(
      'InvalidArgument',
      'the key was not created for imported material (external: true)',
      uri,
    );
  }
  requireState(key, now, ['pending_import'], uri, 'importKeyMaterial');
}

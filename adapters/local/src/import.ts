/**
 * BYOK, as cloud KMSs do it: the keystore publishes an RSA-3072 wrapping public key and an
 * import token (valid 24 h); the caller wraps its key material with RSAES-OAEP under that key
 * and hands back the wrapped bytes and the token. The OAEP hash is SHA-256
 * (`RSAES_OAEP_SHA_256`, the default) or SHA-1 (`RSAES_OAEP_SHA_1`, for HSMs whose C_WrapKey
 * does OAEP with SHA-1 only, such as SoftHSM2 2.6.1; in OAEP the hash serves the padding, not
 * collision resistance). The import job records the algorithm its parameters were issued for,
 * and material declared with another algorithm is refused before anything is unwrapped, as AWS
 * KMS ties an import token to its wrapping algorithm. Material larger than one OAEP block (RSA
 * private keys) would need RSA_AES_KEY_WRAP, which is not offered.
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
import { type ImportWrappingAlgorithm, keyportError } from '@keyport/core';
import { LOCAL_CAPABILITIES } from './capabilities.js';
import { localError, PROVIDER_NAME } from './errors.js';
import { requireState } from './key-state.js';
import type { StoredImportJob, StoredKey } from './model.js';

export const WRAPPING_KEY_BITS = 3072;

/** The import algorithms of the local keystore and the OAEP hash of each. */
const OAEP_HASH = { RSAES_OAEP_SHA_256: 'sha256', RSAES_OAEP_SHA_1: 'sha1' } as const;
export type LocalImportAlgorithm = keyof typeof OAEP_HASH;

/**
 * A stored import job with the algorithm it was issued for. Keystores written before SHA-1 was
 * accepted hold jobs without `algorithm`: those were issued for RSAES_OAEP_SHA_256, the only
 * algorithm then.
 */
export interface ImportJob extends StoredImportJob {
  algorithm?: LocalImportAlgorithm;
}

function isLocalImportAlgorithm(algorithm: unknown): algorithm is LocalImportAlgorithm {
  return typeof algorithm === 'string' && Object.hasOwn(OAEP_HASH, algorithm);
}

/** The algorithm a stored job was issued for; anything else in the sealed body is corruption. */
function jobAlgorithm(job: ImportJob, keyUri: string): LocalImportAlgorithm {
  if (job.algorithm === undefined) return 'RSAES_OAEP_SHA_256';
  if (!isLocalImportAlgorithm(job.algorithm)) {
    throw localError('Integrity', 'the stored import job names an unknown wrapping algorithm', keyUri);
  }
  return job.algorithm;
}

/**
 * A new wrapping key pair and token for `algorithm`; the private half is kept in the keystore
 * until import.
 */
export async function newImportJob(expiresAt: Date, algorithm: LocalImportAlgorithm): Promise<ImportJob> {
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
      algorithm,
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

/**
 * Checks the token, the expiry and that `algorithm` is the one the parameters were issued for,
 * then unwraps the material with that algorithm's OAEP hash (the caller wipes it).
 */
export function unwrapMaterial(
  job: ImportJob,
  algorithm: ImportWrappingAlgorithm,
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
  const issuedFor = jobAlgorithm(job, keyUri);
  if (algorithm !== issuedFor) {
    throw localError(
      'InvalidArgument',
      `the import parameters were issued for ${issuedFor}, not ${algorithm}; call getImportParameters with the algorithm the material is wrapped with`,
      keyUri,
    );
  }
  const der = Buffer.from(job.wrappingKey, 'base64');
  try {
    const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    return privateDecrypt(
      { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH[issuedFor] },
      wrapped,
    );
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

export function checkImportAlgorithm(
  algorithm: string,
  uri: string,
): asserts algorithm is LocalImportAlgorithm {
  if (!isLocalImportAlgorithm(algorithm) || !LOCAL_CAPABILITIES.import.includes(algorithm)) {
    throw keyportError(
      'Unsupported',
      `the local provider wraps imports with ${LOCAL_CAPABILITIES.import.join(' or ')} only`,
      { provider: PROVIDER_NAME, keyUri: uri, capability: 'import' },
    );
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

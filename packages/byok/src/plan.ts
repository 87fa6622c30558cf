/**
 * Which wrapping algorithm an import takes, decided before anything is touched: the algorithms
 * the target accepts, intersected with the OAEP hashes the HSM can wrap with.
 *
 * Preference: plain RSAES-OAEP first (one C_WrapKey with CKM_RSA_PKCS_OAEP: AWS KMS, the local
 * keystore), then RSA_AES_KEY_WRAP (an ephemeral AES key in the HSM, CKM_AES_KEY_WRAP_PAD of the
 * target key under it, CKM_RSA_PKCS_OAEP of the ephemeral key: Vault/OpenBao's format). SHA-256
 * before SHA-1 within each.
 */
import {
  type ImportWrappingAlgorithm,
  type KeyOperations,
  keyUriScheme,
  UnsupportedError,
} from '@keyport/core';
import type { ImportTarget, OaepHash } from './types.js';

export const PREFERENCE: readonly ImportWrappingAlgorithm[] = [
  'RSAES_OAEP_SHA_256',
  'RSAES_OAEP_SHA_1',
  'RSA_AES_KEY_WRAP_SHA_256',
  'RSA_AES_KEY_WRAP_SHA_1',
];

export const oaepHashOf = (a: ImportWrappingAlgorithm): OaepHash => (a.endsWith('SHA_1') ? 'sha1' : 'sha256');

export interface ImportPlan {
  readonly scheme: string;
  readonly algorithm: ImportWrappingAlgorithm;
}

export function planImport(
  keyport: KeyOperations,
  hsmHashes: readonly OaepHash[],
  target: ImportTarget,
): ImportPlan {
  const scheme = keyUriScheme(target.uri);
  const accepted = keyport.capabilities(target.uri).import;
  const algorithm = PREFERENCE.find((a) => accepted.includes(a) && hsmHashes.includes(oaepHashOf(a)));
  if (algorithm !== undefined) return { scheme, algorithm };
  const hashes = hsmHashes.length === 0 ? 'no OAEP hash' : `OAEP ${hsmHashes.join('/')} only`;
  throw new UnsupportedError(
    'import',
    `the HSM can wrap with ${hashes}; ${scheme} accepts ${accepted.join(', ') || 'no import'}`,
    { provider: 'byok', keyUri: target.uri },
  );
}

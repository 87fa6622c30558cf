/**
 * Which wrapping algorithm and which route an import takes, decided before anything is touched:
 * the algorithms the target accepts, intersected with the OAEP hashes the HSM can wrap with.
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
import type { ImportRoute, ImportTarget, OaepHash } from './types.js';

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
  readonly route: ImportRoute;
}

export function planImport(
  keyport: KeyOperations,
  hsmHashes: readonly OaepHash[],
  target: ImportTarget,
): ImportPlan {
  const scheme = keyUriScheme(target.uri);
  const accepted = keyport.capabilities(target.uri).import;
  const wrappable = (a: ImportWrappingAlgorithm) => hsmHashes.includes(oaepHashOf(a));
  const viaKeyport = PREFERENCE.find((a) => accepted.includes(a) && wrappable(a));
  if (viaKeyport !== undefined) return { scheme, algorithm: viaKeyport, route: 'keyport' };
  if (scheme === 'hcvault' && target.transit !== undefined) {
    // Transit's import takes hash_function SHA1 too; the adapter only sends SHA256.
    const algorithm = (['RSA_AES_KEY_WRAP_SHA_256', 'RSA_AES_KEY_WRAP_SHA_1'] as const).find(wrappable);
    if (algorithm !== undefined) return { scheme, algorithm, route: 'transit-direct' };
  }
  const hashes = hsmHashes.length === 0 ? 'no OAEP hash' : `OAEP ${hsmHashes.join('/')} only`;
  const hint =
    scheme === 'hcvault' && target.transit === undefined
      ? ' (give target.transit to import into transit with hash_function SHA1)'
      : '';
  throw new UnsupportedError(
    'import',
    `the HSM can wrap with ${hashes}; ${scheme} accepts ${accepted.join(', ') || 'no import'}${hint}`,
    { provider: 'byok', keyUri: target.uri },
  );
}

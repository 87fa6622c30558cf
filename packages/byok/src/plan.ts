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
  checkEnum,
  checkOptions,
  checkString,
  describeType,
  type ImportWrappingAlgorithm,
  invalidArgument,
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

const OAEP_HASHES: readonly OaepHash[] = ['sha1', 'sha256'];

/**
 * The HSM's hashes and the target, checked: a string where the list goes (`'sha1'`) would
 * match by substring, and a misspelt or extra target field would be dropped unseen.
 */
function checkPlanArguments(
  hsmHashes: unknown,
  target: unknown,
): { hashes: readonly OaepHash[]; uri: string } {
  if (!Array.isArray(hsmHashes))
    throw invalidArgument('hsmHashes', `expected an array of OAEP hashes, got ${describeType(hsmHashes)}`);
  const hashes = hsmHashes.map((h, i) => checkEnum(h, `hsmHashes[${i}]`, OAEP_HASHES));
  const t = checkOptions(target, 'target', { uri: true } as const satisfies Record<keyof ImportTarget, true>);
  return { hashes, uri: checkString(t.uri, 'target.uri', { min: 1 }) };
}

export function planImport(
  keyport: KeyOperations,
  hsmHashes: readonly OaepHash[],
  target: ImportTarget,
): ImportPlan {
  const { hashes, uri } = checkPlanArguments(hsmHashes, target);
  const scheme = keyUriScheme(uri);
  const accepted = keyport.capabilities(uri).import;
  const algorithm = PREFERENCE.find((a) => accepted.includes(a) && hashes.includes(oaepHashOf(a)));
  if (algorithm !== undefined) return { scheme, algorithm };
  const can = hashes.length === 0 ? 'no OAEP hash' : `OAEP ${hashes.join('/')} only`;
  throw new UnsupportedError(
    'import',
    `the HSM can wrap with ${can}; ${scheme} accepts ${accepted.join(', ') || 'no import'}`,
    { provider: 'byok', keyUri: uri },
  );
}

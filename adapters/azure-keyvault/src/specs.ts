/**
 * Key specs and usages <-> Key Vault key types, sizes, curves and key operations. Keyport creates
 * keys with the fewest key operations their usage needs (RSA encryption uses wrapKey/unwrapKey
 * only), and reads the usage back from the key operations.
 */

import type { JsonWebKey, KeyOperation, KeyType } from '@azure/keyvault-keys';
import {
  type Capabilities,
  KeyportError,
  type KeySpec,
  type KeyUsage,
  UnsupportedError,
  USAGES_BY_SPEC,
} from '@keyport/core';
import type { VaultKind } from './capabilities.js';
import { PROVIDER_NAME } from './errors.js';

export interface AzureKeyShape {
  readonly kty: KeyType;
  readonly keySize?: number;
  readonly curve?: 'P-256' | 'P-384';
  readonly keyOps: KeyOperation[];
}

const RSA_BITS: Partial<Record<KeySpec, number>> = { RSA_2048: 2048, RSA_3072: 3072, RSA_4096: 4096 };
const CURVES: Partial<Record<KeySpec, 'P-256' | 'P-384'>> = { EC_P256: 'P-256', EC_P384: 'P-384' };

/** Checks spec and usage against the declared capabilities and gives the Key Vault key to create. */
export function shapeFor(
  caps: Capabilities,
  kind: VaultKind,
  spec: KeySpec,
  usage: KeyUsage | undefined,
): { shape: AzureKeyShape; usage: KeyUsage } {
  const declared = caps.keySpecs[spec];
  if (declared === undefined) {
    throw new UnsupportedError('keySpecs', `${spec} keys are not available on this kind of vault (${kind})`, {
      provider: PROVIDER_NAME,
    });
  }
  const chosen = usage ?? (declared[0] as KeyUsage);
  if (!USAGES_BY_SPEC[spec].includes(chosen)) {
    throw new KeyportError('InvalidArgument', `a ${spec} key cannot be used for ${chosen}`, {
      provider: PROVIDER_NAME,
    });
  }
  if (!declared.includes(chosen)) {
    throw new UnsupportedError('keySpecs', `${spec} keys for ${chosen} are not available`, {
      provider: PROVIDER_NAME,
    });
  }
  const hsm = kind === 'managedHsm';
  const ops: KeyOperation[] =
    chosen === 'sign_verify'
      ? ['sign', 'verify']
      : spec === 'AES_256'
        ? ['encrypt', 'decrypt']
        : ['wrapKey', 'unwrapKey'];
  const bits = RSA_BITS[spec];
  if (bits !== undefined)
    return { shape: { kty: hsm ? 'RSA-HSM' : 'RSA', keySize: bits, keyOps: ops }, usage: chosen };
  const curve = CURVES[spec];
  if (curve !== undefined)
    return { shape: { kty: hsm ? 'EC-HSM' : 'EC', curve, keyOps: ops }, usage: chosen };
  return { shape: { kty: 'oct-HSM', keySize: 256, keyOps: ops }, usage: chosen };
}

export type KeyFamily = 'RSA' | 'EC' | 'oct';

export function familyOf(kty: string | undefined): KeyFamily | undefined {
  if (kty === 'RSA' || kty === 'RSA-HSM') return 'RSA';
  if (kty === 'EC' || kty === 'EC-HSM') return 'EC';
  if (kty === 'oct' || kty === 'oct-HSM') return 'oct';
  return undefined;
}

/**
 * The keyport spec of a key from its public JWK. Key types keyport has no spec for (EC P-521,
 * P-256K, RSA of other sizes) are refused with UnsupportedError naming what they are. An oct key's
 * size is not in its JWK: keyport only creates AES-256, so oct keys are reported as AES_256.
 */
export function specOf(jwk: JsonWebKey | undefined): KeySpec {
  const family = familyOf(jwk?.kty);
  if (family === 'RSA' && jwk?.n !== undefined) {
    const n = jwk.n;
    const bits = (n[0] === 0 ? n.length - 1 : n.length) * 8;
    const spec = (Object.keys(RSA_BITS) as KeySpec[]).find((s) => RSA_BITS[s] === bits);
    if (spec !== undefined) return spec;
    throw new UnsupportedError('keySpecs', `RSA keys of ${bits} bits have no keyport key spec`, {
      provider: PROVIDER_NAME,
    });
  }
  if (family === 'EC') {
    const spec = (Object.keys(CURVES) as KeySpec[]).find((s) => CURVES[s] === jwk?.crv);
    if (spec !== undefined) return spec;
    throw new UnsupportedError('keySpecs', `EC keys on curve ${String(jwk?.crv)} have no keyport key spec`, {
      provider: PROVIDER_NAME,
    });
  }
  if (family === 'oct') return 'AES_256';
  throw new UnsupportedError('keySpecs', `key type ${String(jwk?.kty)} has no keyport key spec`, {
    provider: PROVIDER_NAME,
  });
}

/** The usage a key serves, read from its key operations (sign wins for RSA keys that allow both). */
export function usageOf(spec: KeySpec, ops: readonly string[] | undefined): KeyUsage {
  if (spec.startsWith('EC_')) return 'sign_verify';
  if (spec === 'AES_256') return 'encrypt_decrypt';
  const list = ops ?? [];
  const encrypts = list.some((o) => o === 'wrapKey' || o === 'encrypt');
  return !encrypts && list.includes('sign') ? 'sign_verify' : 'encrypt_decrypt';
}

/**
 * Key specs, usages and signing algorithms <-> Key Vault key types, sizes, curves, key operations
 * and JWS algorithms. keyport creates keys with the fewest key operations their usage needs (RSA
 * encryption uses wrapKey/unwrapKey only), and reads the usage back from the key operations.
 */
import type { JsonWebKey, KeyOperation, KeyType, SignatureAlgorithm } from '@azure/keyvault-keys';
import {
  type KeySpec,
  type KeyUsage,
  keyportError,
  type SigningAlgorithm,
  unmodeledKeyError,
} from '@keyport/core';
import type { VaultKind } from './capabilities.js';
import { PROVIDER_NAME } from './errors.js';

export interface AzureKeyShape {
  readonly kty: KeyType;
  readonly keySize?: number;
  readonly curve?: 'P-256' | 'P-384';
}

/** The Key Vault key of each spec; a Managed HSM stores every key as its `-HSM` type. */
const SHAPES: Partial<Record<KeySpec, AzureKeyShape>> = {
  RSA_2048: { kty: 'RSA', keySize: 2048 },
  RSA_3072: { kty: 'RSA', keySize: 3072 },
  RSA_4096: { kty: 'RSA', keySize: 4096 },
  EC_P256: { kty: 'EC', curve: 'P-256' },
  EC_P384: { kty: 'EC', curve: 'P-384' },
  AES_256: { kty: 'oct-HSM', keySize: 256 },
};

/** The key to create: core has checked that this instance declares the spec and usage. */
export function shapeFor(
  spec: KeySpec,
  usage: KeyUsage,
  kind: VaultKind,
): AzureKeyShape & { keyOps: KeyOperation[] } {
  const shape = SHAPES[spec];
  if (shape === undefined) {
    throw keyportError('Unsupported', `${spec} keys are not offered`, {
      provider: PROVIDER_NAME,
      capability: 'keySpecs',
    });
  }
  const kty =
    kind === 'managedHsm' && !shape.kty.endsWith('-HSM') ? (`${shape.kty}-HSM` as KeyType) : shape.kty;
  return { ...shape, kty, keyOps: opsFor(shape.kty, usage) };
}

/** Key operations for a usage: signing, else AES encrypt/decrypt, else RSA key wrapping. */
export function opsFor(kty: string, usage: KeyUsage | undefined): KeyOperation[] {
  const family = familyOf(kty);
  if (family === 'EC' || usage === 'sign_verify') return ['sign', 'verify'];
  return family === 'oct' ? ['encrypt', 'decrypt'] : ['wrapKey', 'unwrapKey'];
}

export function familyOf(kty: string | undefined): 'RSA' | 'EC' | 'oct' | undefined {
  const family = kty?.replace(/-HSM$/, '');
  return family === 'RSA' || family === 'EC' || family === 'oct' ? family : undefined;
}

/**
 * The keyport spec of a key from its public JWK. Keys keyport has no spec for (EC P-521, P-256K,
 * RSA of other sizes) are refused naming what they are. An oct key's size is not in its JWK:
 * keyport only creates AES-256, so oct keys are reported as AES_256.
 */
export function specOf(jwk: JsonWebKey | undefined): KeySpec {
  const family = familyOf(jwk?.kty);
  if (family === 'oct') return 'AES_256';
  const n = jwk?.n;
  const bits = n === undefined ? undefined : (n[0] === 0 ? n.length - 1 : n.length) * 8;
  const found = (Object.keys(SHAPES) as KeySpec[]).find((s) =>
    family === 'RSA'
      ? SHAPES[s]?.keySize === bits && s.startsWith('RSA_')
      : family === 'EC' && SHAPES[s]?.curve === jwk?.crv,
  );
  if (found !== undefined) return found;
  const what =
    family === 'RSA'
      ? `RSA keys of ${bits} bits`
      : family === 'EC'
        ? `EC keys on curve ${String(jwk?.crv)}`
        : `key type ${String(jwk?.kty)}`;
  throw unmodeledKeyError(what, { provider: PROVIDER_NAME });
}

/** The usage a key serves, read from its key operations (sign wins for RSA keys that allow both). */
export function usageOf(spec: KeySpec, ops: readonly string[] | undefined): KeyUsage {
  if (spec.startsWith('EC_')) return 'sign_verify';
  if (spec === 'AES_256') return 'encrypt_decrypt';
  const list = ops ?? [];
  const encrypts = list.includes('wrapKey') || list.includes('encrypt');
  return !encrypts && list.includes('sign') ? 'sign_verify' : 'encrypt_decrypt';
}

/** Key Vault signs digests: the JWS algorithm and the hash keyport computes for it. */
export const SIGNING: Record<
  SigningAlgorithm,
  { alg: SignatureAlgorithm; hash: 'sha256' | 'sha384'; bytes: number }
> = {
  RSASSA_PSS_SHA_256: { alg: 'PS256', hash: 'sha256', bytes: 32 },
  RSASSA_PKCS1_V1_5_SHA_256: { alg: 'RS256', hash: 'sha256', bytes: 32 },
  ECDSA_SHA_256: { alg: 'ES256', hash: 'sha256', bytes: 32 },
  ECDSA_SHA_384: { alg: 'ES384', hash: 'sha384', bytes: 48 },
};

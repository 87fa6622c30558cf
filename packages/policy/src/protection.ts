/**
 * Protection level where the driver does not report it per key (`KeyInfo.protection`, which Cloud
 * KMS and Azure Key Vault fill and which wins): what the operator states for a source, else what
 * the product fixes for every key of its scheme, else unknown.
 */
import type { KeySpec } from '@keyport/core';
import type { Known, Protection } from './inventory-types.js';
import { UNKNOWN } from './inventory-types.js';

const BY_SCHEME: Readonly<Record<string, Protection>> = {
  // AWS KMS keeps every AWS_KMS-origin key in its FIPS 140-3 validated HSMs.
  'aws-kms': 'hsm',
  pkcs11: 'hsm',
  local: 'software',
  // Transit keys live in Vault's barrier-encrypted storage, in process memory when used.
  hcvault: 'software',
};

/**
 * The driver scheme of a key URI, without the instance selector (`aws-kms+prod:` → `aws-kms`),
 * '' when there is none. Lenient (an inventory read back from JSON is not held to the grammar).
 */
export const driverSchemeOf = (uri: string): string =>
  uri.slice(0, Math.max(uri.indexOf(':'), 0)).split('+')[0] as string;

export function protectionOf(scheme: string, declared: Protection | undefined): Known<Protection> {
  if (declared !== undefined) return declared;
  return Object.hasOwn(BY_SCHEME, scheme) ? (BY_SCHEME[scheme] as Protection) : UNKNOWN;
}

const BITS: Readonly<Record<KeySpec, number>> = {
  AES_256: 256,
  RSA_2048: 2048,
  RSA_3072: 3072,
  RSA_4096: 4096,
  EC_P256: 256,
  EC_P384: 384,
  HMAC_256: 256,
};

export const keyBitsOf = (spec: KeySpec): number => BITS[spec];

/** The algorithm family of a spec, for size rules: RSA, EC, AES, HMAC. */
export function familyOf(spec: KeySpec): 'RSA' | 'EC' | 'AES' | 'HMAC' {
  return spec.slice(0, spec.indexOf('_')) as 'RSA' | 'EC' | 'AES' | 'HMAC';
}

// The CryptoKeyVersionAlgorithm values this server can generate, import and use, with the
// purpose each belongs to and the primitive behind it (see the "Key purposes and algorithms"
// reference page). Anything else in the enum answers UNIMPLEMENTED, never a fake success.
//
// The post-quantum algorithms (ML-KEM for KEY_ENCAPSULATION, ML-DSA and SLH-DSA for signing)
// run on Node's own implementations, which Node 24.7 and newer have; on an older Node they are
// UNIMPLEMENTED like any algorithm this server lacks (`pqcUnavailable` says why).

import { generateKeyPairSync } from 'node:crypto';
import { ownEntry } from '../shared/own.js';
export type Purpose =
  | 'ENCRYPT_DECRYPT'
  | 'ASYMMETRIC_SIGN'
  | 'ASYMMETRIC_DECRYPT'
  | 'MAC'
  | 'KEY_ENCAPSULATION';
/** Node's key type names for the post-quantum algorithms. */
export type PqcKeyType =
  | 'ml-kem-768'
  | 'ml-kem-1024'
  | 'ml-dsa-44'
  | 'ml-dsa-65'
  | 'ml-dsa-87'
  | 'slh-dsa-sha2-128s';
export type Hash = 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';

export type AlgorithmSpec =
  | { purpose: 'ENCRYPT_DECRYPT'; kind: 'aes-256-gcm' }
  | { purpose: 'ASYMMETRIC_SIGN'; kind: 'rsa-pss' | 'rsa-pkcs1'; bits: number; hash: Hash }
  | { purpose: 'ASYMMETRIC_SIGN'; kind: 'rsa-raw-pkcs1'; bits: number }
  | { purpose: 'ASYMMETRIC_SIGN'; kind: 'ecdsa'; curve: 'prime256v1' | 'secp384r1' | 'secp256k1'; hash: Hash }
  | { purpose: 'ASYMMETRIC_SIGN'; kind: 'ed25519' }
  | { purpose: 'ASYMMETRIC_DECRYPT'; kind: 'rsa-oaep'; bits: number; hash: Hash }
  | { purpose: 'MAC'; kind: 'hmac'; hash: Hash; keyBytes: number }
  /** Pure ML-DSA / SLH-DSA (empty context string) over the data: these sign data, never a digest. */
  | { purpose: 'ASYMMETRIC_SIGN'; kind: 'pqc-sign'; keyType: PqcKeyType }
  | { purpose: 'KEY_ENCAPSULATION'; kind: 'ml-kem'; keyType: PqcKeyType };

const table: Record<string, AlgorithmSpec> = {
  GOOGLE_SYMMETRIC_ENCRYPTION: { purpose: 'ENCRYPT_DECRYPT', kind: 'aes-256-gcm' },
  EC_SIGN_P256_SHA256: { purpose: 'ASYMMETRIC_SIGN', kind: 'ecdsa', curve: 'prime256v1', hash: 'sha256' },
  EC_SIGN_P384_SHA384: { purpose: 'ASYMMETRIC_SIGN', kind: 'ecdsa', curve: 'secp384r1', hash: 'sha384' },
  EC_SIGN_SECP256K1_SHA256: { purpose: 'ASYMMETRIC_SIGN', kind: 'ecdsa', curve: 'secp256k1', hash: 'sha256' },
  EC_SIGN_ED25519: { purpose: 'ASYMMETRIC_SIGN', kind: 'ed25519' },
  HMAC_SHA1: { purpose: 'MAC', kind: 'hmac', hash: 'sha1', keyBytes: 20 },
  HMAC_SHA224: { purpose: 'MAC', kind: 'hmac', hash: 'sha224', keyBytes: 28 },
  HMAC_SHA256: { purpose: 'MAC', kind: 'hmac', hash: 'sha256', keyBytes: 32 },
  HMAC_SHA384: { purpose: 'MAC', kind: 'hmac', hash: 'sha384', keyBytes: 48 },
  HMAC_SHA512: { purpose: 'MAC', kind: 'hmac', hash: 'sha512', keyBytes: 64 },
  ML_KEM_768: { purpose: 'KEY_ENCAPSULATION', kind: 'ml-kem', keyType: 'ml-kem-768' },
  ML_KEM_1024: { purpose: 'KEY_ENCAPSULATION', kind: 'ml-kem', keyType: 'ml-kem-1024' },
  PQ_SIGN_ML_DSA_44: { purpose: 'ASYMMETRIC_SIGN', kind: 'pqc-sign', keyType: 'ml-dsa-44' },
  PQ_SIGN_ML_DSA_65: { purpose: 'ASYMMETRIC_SIGN', kind: 'pqc-sign', keyType: 'ml-dsa-65' },
  PQ_SIGN_ML_DSA_87: { purpose: 'ASYMMETRIC_SIGN', kind: 'pqc-sign', keyType: 'ml-dsa-87' },
  PQ_SIGN_SLH_DSA_SHA2_128S: { purpose: 'ASYMMETRIC_SIGN', kind: 'pqc-sign', keyType: 'slh-dsa-sha2-128s' },
};
for (const bits of [2048, 3072, 4096]) {
  table[`RSA_SIGN_PSS_${bits}_SHA256`] = {
    purpose: 'ASYMMETRIC_SIGN',
    kind: 'rsa-pss',
    bits,
    hash: 'sha256',
  };
  table[`RSA_SIGN_PKCS1_${bits}_SHA256`] = {
    purpose: 'ASYMMETRIC_SIGN',
    kind: 'rsa-pkcs1',
    bits,
    hash: 'sha256',
  };
  table[`RSA_SIGN_RAW_PKCS1_${bits}`] = { purpose: 'ASYMMETRIC_SIGN', kind: 'rsa-raw-pkcs1', bits };
  table[`RSA_DECRYPT_OAEP_${bits}_SHA256`] = {
    purpose: 'ASYMMETRIC_DECRYPT',
    kind: 'rsa-oaep',
    bits,
    hash: 'sha256',
  };
  table[`RSA_DECRYPT_OAEP_${bits}_SHA1`] = {
    purpose: 'ASYMMETRIC_DECRYPT',
    kind: 'rsa-oaep',
    bits,
    hash: 'sha1',
  };
}
table.RSA_SIGN_PSS_4096_SHA512 = { purpose: 'ASYMMETRIC_SIGN', kind: 'rsa-pss', bits: 4096, hash: 'sha512' };
table.RSA_SIGN_PKCS1_4096_SHA512 = {
  purpose: 'ASYMMETRIC_SIGN',
  kind: 'rsa-pkcs1',
  bits: 4096,
  hash: 'sha512',
};
table.RSA_DECRYPT_OAEP_4096_SHA512 = {
  purpose: 'ASYMMETRIC_DECRYPT',
  kind: 'rsa-oaep',
  bits: 4096,
  hash: 'sha512',
};

export function algorithmSpec(algorithm: string): AlgorithmSpec | undefined {
  return ownEntry(table, algorithm);
}

/** Whether `spec` is one of the post-quantum algorithms (their public keys are NIST_PQC only). */
export function isPqc(spec: AlgorithmSpec): spec is Extract<AlgorithmSpec, { keyType: PqcKeyType }> {
  return spec.kind === 'pqc-sign' || spec.kind === 'ml-kem';
}

const nodeHas = new Map<PqcKeyType, boolean>();
/**
 * Why this Node cannot run `spec` (undefined: it can). Asked of Node once per key type, by
 * making a key pair: a feature check on `crypto` would not say which key types OpenSSL offers.
 */
export function pqcUnavailable(spec: AlgorithmSpec): string | undefined {
  if (!isPqc(spec)) return undefined;
  let has = nodeHas.get(spec.keyType);
  if (has === undefined) {
    try {
      // @types/node predates these key types: the call is the same, its overloads are not.
      (generateKeyPairSync as (type: string) => unknown)(spec.keyType);
      has = true;
    } catch {
      has = false;
    }
    nodeHas.set(spec.keyType, has);
  }
  return has ? undefined : `${spec.keyType} needs Node 24.7 or newer (this is ${process.version})`;
}

export const PURPOSES: readonly Purpose[] = [
  'ENCRYPT_DECRYPT',
  'ASYMMETRIC_SIGN',
  'ASYMMETRIC_DECRYPT',
  'MAC',
  'KEY_ENCAPSULATION',
];

/** Algorithms that the real service offers only at protection level HSM. */
export const HSM_ONLY: ReadonlySet<string> = new Set(['EC_SIGN_SECP256K1_SHA256']);

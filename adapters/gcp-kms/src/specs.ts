/**
 * Cloud KMS vocabulary ↔ keyport's, as data. Cloud KMS fixes the algorithm (hash, padding) per
 * key version; keyport creates one algorithm per spec and usage but describes every algorithm a
 * key made elsewhere may use. Enums arrive as names from the client, or as numbers (from
 * resources.proto) in some responses; both are read.
 */
import {
  type KeySpec,
  type KeyState,
  type KeyUsage,
  type KeyVersionState,
  type SigningAlgorithm,
  unmodeledKeyError,
} from '@keyport/core';

export type Purpose = 'ENCRYPT_DECRYPT' | 'ASYMMETRIC_SIGN' | 'ASYMMETRIC_DECRYPT' | 'MAC';
export type Hash = 'sha256' | 'sha384' | 'sha512' | 'sha1';

export interface AlgorithmInfo {
  /** The enum number in resources.proto. */
  readonly id: number;
  readonly spec: KeySpec;
  readonly usage: KeyUsage;
  /** The hash of RSA-OAEP (encryption) or of the signed digest. */
  readonly hash?: Hash;
  /** keyport's name of a signing algorithm. */
  readonly signing?: SigningAlgorithm;
}

const oaep = (id: number, spec: KeySpec, hash: Hash): AlgorithmInfo => ({
  id,
  spec,
  usage: 'encrypt_decrypt',
  hash,
});
function sign(id: number, spec: KeySpec, signing: SigningAlgorithm, hash: Hash = 'sha256'): AlgorithmInfo {
  return { id, spec, usage: 'sign_verify', signing, hash };
}
const [PSS, PKCS1] = ['RSASSA_PSS_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_256'] as const;

/**
 * Every Cloud KMS algorithm keyport can describe (keys made elsewhere may use any of these). The
 * first one listed for a spec and usage is the one keyport creates keys of that spec and usage with.
 */
export const ALGORITHMS: Readonly<Record<string, AlgorithmInfo>> = {
  GOOGLE_SYMMETRIC_ENCRYPTION: { id: 1, spec: 'AES_256', usage: 'encrypt_decrypt' },
  RSA_SIGN_PSS_2048_SHA256: sign(2, 'RSA_2048', PSS),
  RSA_SIGN_PSS_3072_SHA256: sign(3, 'RSA_3072', PSS),
  RSA_SIGN_PSS_4096_SHA256: sign(4, 'RSA_4096', PSS),
  RSA_SIGN_PKCS1_2048_SHA256: sign(5, 'RSA_2048', PKCS1),
  RSA_SIGN_PKCS1_3072_SHA256: sign(6, 'RSA_3072', PKCS1),
  RSA_SIGN_PKCS1_4096_SHA256: sign(7, 'RSA_4096', PKCS1),
  RSA_DECRYPT_OAEP_2048_SHA256: oaep(8, 'RSA_2048', 'sha256'),
  RSA_DECRYPT_OAEP_3072_SHA256: oaep(9, 'RSA_3072', 'sha256'),
  RSA_DECRYPT_OAEP_4096_SHA256: oaep(10, 'RSA_4096', 'sha256'),
  EC_SIGN_P256_SHA256: sign(12, 'EC_P256', 'ECDSA_SHA_256'),
  EC_SIGN_P384_SHA384: sign(13, 'EC_P384', 'ECDSA_SHA_384', 'sha384'),
  RSA_DECRYPT_OAEP_4096_SHA512: oaep(17, 'RSA_4096', 'sha512'),
  HMAC_SHA256: { id: 32, spec: 'HMAC_256', usage: 'mac' },
  RSA_DECRYPT_OAEP_2048_SHA1: oaep(37, 'RSA_2048', 'sha1'),
  RSA_DECRYPT_OAEP_3072_SHA1: oaep(38, 'RSA_3072', 'sha1'),
  RSA_DECRYPT_OAEP_4096_SHA1: oaep(39, 'RSA_4096', 'sha1'),
};

const PURPOSE_BY_USAGE: Readonly<Record<KeyUsage, Purpose>> = {
  encrypt_decrypt: 'ASYMMETRIC_DECRYPT',
  sign_verify: 'ASYMMETRIC_SIGN',
  mac: 'MAC',
};

/** The purpose and algorithm of a new key of `spec` for `usage`, if keyport makes such keys. */
export function newKeyAlgorithm(spec: KeySpec, usage: KeyUsage): [Purpose, string] | undefined {
  const name = Object.keys(ALGORITHMS).find(
    (n) => ALGORITHMS[n]?.spec === spec && ALGORITHMS[n]?.usage === usage,
  );
  if (name === undefined) return undefined;
  return [spec === 'AES_256' ? 'ENCRYPT_DECRYPT' : PURPOSE_BY_USAGE[usage], name];
}

const ALGORITHM_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(ALGORITHMS).map(([name, a]) => [a.id, name]),
);
const PURPOSE_NAMES: Readonly<Record<number, string>> = {
  1: 'ENCRYPT_DECRYPT',
  5: 'ASYMMETRIC_SIGN',
  6: 'ASYMMETRIC_DECRYPT',
  7: 'RAW_ENCRYPT_DECRYPT',
  9: 'MAC',
};
const VERSION_STATE_NAMES: readonly string[] = (
  'CRYPTO_KEY_VERSION_STATE_UNSPECIFIED ENABLED DISABLED DESTROYED DESTROY_SCHEDULED PENDING_GENERATION ' +
  'PENDING_IMPORT IMPORT_FAILED GENERATION_FAILED PENDING_EXTERNAL_DESTRUCTION EXTERNAL_DESTRUCTION_FAILED'
).split(' ');

/** Cloud KMS version states → keyport's (states keyport has no finer name for take the nearest). */
const VERSION_STATES: Readonly<Record<string, KeyVersionState>> = {
  ENABLED: 'enabled',
  DISABLED: 'disabled',
  PENDING_IMPORT: 'pending_import',
  DESTROY_SCHEDULED: 'destroy_scheduled',
  DESTROYED: 'destroyed',
  PENDING_GENERATION: 'disabled',
  IMPORT_FAILED: 'destroyed',
  GENERATION_FAILED: 'destroyed',
  PENDING_EXTERNAL_DESTRUCTION: 'destroy_scheduled',
  EXTERNAL_DESTRUCTION_FAILED: 'destroyed',
};

/** A key's state is its leading version's. */
export const KEY_STATE_BY_VERSION: Readonly<Record<KeyVersionState, KeyState>> = {
  enabled: 'enabled',
  disabled: 'disabled',
  pending_import: 'pending_import',
  destroy_scheduled: 'pending_deletion',
  destroyed: 'destroyed',
};

function enumName(value: unknown, names: Readonly<Record<number, string>>): string {
  if (typeof value === 'string') return value;
  return (typeof value === 'number' && Object.hasOwn(names, value) && names[value]) || 'UNSPECIFIED';
}

export const algorithmName = (value: unknown): string => enumName(value, ALGORITHM_NAMES);
export const purposeName = (value: unknown): string => enumName(value, PURPOSE_NAMES);
export const versionStateName = (value: unknown): string => enumName(value, VERSION_STATE_NAMES);
export const versionState = (value: unknown): KeyVersionState =>
  VERSION_STATES[versionStateName(value)] ?? 'disabled';

/** ImportJob.ImportJobState, by enum number in resources.proto. */
const IMPORT_JOB_STATE_NAMES: readonly string[] = [
  'IMPORT_JOB_STATE_UNSPECIFIED',
  'PENDING_GENERATION',
  'ACTIVE',
  'EXPIRED',
];
export const importJobStateName = (value: unknown): string => enumName(value, IMPORT_JOB_STATE_NAMES);

/** What an algorithm is in keyport's terms; a key of an algorithm keyport does not model is refused. */
export function describeAlgorithm(algorithm: string, keyUri?: string): AlgorithmInfo {
  const info = Object.hasOwn(ALGORITHMS, algorithm) ? ALGORITHMS[algorithm] : undefined;
  if (info === undefined) {
    throw unmodeledKeyError(`Cloud KMS algorithm ${algorithm}`, keyUri === undefined ? {} : { keyUri });
  }
  return info;
}

/**
 * Vocabulary translation between keyport and AWS KMS: key specs, usages, states, algorithms and
 * grant operations. Pure data, so both directions are checked by tests without a network.
 */
import type {
  GrantOperation as AwsGrantOperation,
  KeySpec as AwsKeySpec,
  KeyState as AwsKeyState,
  EncryptionAlgorithmSpec,
  KeyMetadata,
  KeyUsageType,
} from '@aws-sdk/client-kms';
import {
  type GrantOperation,
  type KeySpec,
  type KeyState,
  type KeyUsage,
  unmodeledKeyError,
} from '@keyport/core';
import { PROVIDER_NAME } from './errors.js';

export const AWS_KEY_SPEC: Readonly<Record<KeySpec, AwsKeySpec>> = {
  AES_256: 'SYMMETRIC_DEFAULT',
  RSA_2048: 'RSA_2048',
  RSA_3072: 'RSA_3072',
  RSA_4096: 'RSA_4096',
  EC_P256: 'ECC_NIST_P256',
  EC_P384: 'ECC_NIST_P384',
  HMAC_256: 'HMAC_256',
};

export const AWS_KEY_USAGE: Readonly<Record<KeyUsage, KeyUsageType>> = {
  encrypt_decrypt: 'ENCRYPT_DECRYPT',
  sign_verify: 'SIGN_VERIFY',
  mac: 'GENERATE_VERIFY_MAC',
};

function invert<K extends string, V extends string>(table: Readonly<Record<K, V>>): ReadonlyMap<string, K> {
  return new Map(Object.entries(table).map(([k, v]) => [v as string, k as K]));
}

const KEYPORT_KEY_SPEC = invert(AWS_KEY_SPEC);
const KEYPORT_KEY_USAGE = invert(AWS_KEY_USAGE);

/** keyport's spec and usage of an AWS key; specs keyport does not model (SM2, HMAC_384, ...) are refused. */
export function keyportSpecOf(meta: KeyMetadata, keyUri?: string): { spec: KeySpec; usage: KeyUsage } {
  const spec = KEYPORT_KEY_SPEC.get(String(meta.KeySpec));
  const usage = KEYPORT_KEY_USAGE.get(String(meta.KeyUsage));
  if (spec === undefined || usage === undefined) {
    throw unmodeledKeyError(`AWS key spec ${String(meta.KeySpec)} (${String(meta.KeyUsage)})`, {
      provider: PROVIDER_NAME,
      ...(keyUri !== undefined ? { keyUri } : {}),
    });
  }
  return { spec, usage };
}

/**
 * AWS has more states than keyport. `Creating`/`Unavailable` (custom key stores) cannot be used,
 * so they read as disabled; replica deletion is a deletion.
 */
export const KEYPORT_KEY_STATE: Readonly<Record<AwsKeyState, KeyState>> = {
  Enabled: 'enabled',
  Updating: 'enabled',
  Disabled: 'disabled',
  Creating: 'disabled',
  Unavailable: 'disabled',
  PendingDeletion: 'pending_deletion',
  PendingReplicaDeletion: 'pending_deletion',
  PendingImport: 'pending_import',
};

/** The one asymmetric encryption scheme keyport uses with RSA keys (OAEP with SHA-256). */
export function encryptionAlgorithmFor(spec: KeySpec): EncryptionAlgorithmSpec {
  return spec.startsWith('RSA_') ? 'RSAES_OAEP_SHA_256' : 'SYMMETRIC_DEFAULT';
}

/** One keyport grant operation may need several AWS operations (ReEncryptFrom + ReEncryptTo). */
export const AWS_GRANT_OPERATIONS: Readonly<Record<GrantOperation, readonly AwsGrantOperation[]>> = {
  encrypt: ['Encrypt'],
  decrypt: ['Decrypt'],
  generate_data_key: ['GenerateDataKey', 'GenerateDataKeyWithoutPlaintext'],
  re_encrypt: ['ReEncryptFrom', 'ReEncryptTo'],
  sign: ['Sign'],
  verify: ['Verify'],
  mac: ['GenerateMac'],
  verify_mac: ['VerifyMac'],
  describe: ['DescribeKey'],
};

export function awsGrantOperations(ops: readonly GrantOperation[]): AwsGrantOperation[] {
  return [...new Set(ops.flatMap((op) => AWS_GRANT_OPERATIONS[op]))];
}

/**
 * The keyport operations a grant's AWS operations allow: the first AWS operation of each entry is
 * the one keyport calls (re-encryption needs both halves). AWS operations keyport does not model
 * (CreateGrant, RetireGrant, ...) are not listed here: see `unmodeledGrantOperations`.
 */
export function keyportGrantOperations(awsOps: readonly string[]): GrantOperation[] {
  const have = new Set(awsOps);
  return (Object.keys(AWS_GRANT_OPERATIONS) as GrantOperation[]).filter((op) => {
    const needed = AWS_GRANT_OPERATIONS[op];
    return op === 're_encrypt' ? needed.every((a) => have.has(a)) : have.has(needed[0] as string);
  });
}

/**
 * The AWS operations of a grant that its keyport operations do not account for, in AWS's order:
 * those keyport has no name for (CreateGrant, GenerateDataKeyPair, DeriveSharedSecret...) and
 * halves of a pair keyport names only whole (ReEncryptFrom alone lets the grantee re-encrypt the
 * data under a key it holds: as good as decrypt).
 */
export function unmodeledGrantOperations(awsOps: readonly string[]): string[] {
  const accounted = new Set<string>(awsGrantOperations(keyportGrantOperations(awsOps)));
  return [...new Set(awsOps)].filter((op) => !accounted.has(op));
}

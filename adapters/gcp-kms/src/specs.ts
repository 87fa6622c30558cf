/**
 * keyport key specs and usages ↔ Cloud KMS purposes and version algorithms. Cloud KMS fixes the
 * algorithm (hash, padding) per key version; keyport picks one algorithm per spec and usage.
 */
import {
  KeyportError,
  type KeySpec,
  type KeyUsage,
  type SigningAlgorithm,
  UnsupportedError,
  USAGES_BY_SPEC,
} from '@keyport/core';

export type Purpose = 'ENCRYPT_DECRYPT' | 'ASYMMETRIC_SIGN' | 'ASYMMETRIC_DECRYPT' | 'MAC';

export const PURPOSE_BY_USAGE: Readonly<Record<KeyUsage, (spec: KeySpec) => Purpose>> = {
  encrypt_decrypt: (spec) => (spec === 'AES_256' ? 'ENCRYPT_DECRYPT' : 'ASYMMETRIC_DECRYPT'),
  sign_verify: () => 'ASYMMETRIC_SIGN',
  mac: () => 'MAC',
};

/** The algorithm keyport creates for each spec and usage. */
const CREATE_ALGORITHM: Readonly<Record<string, string>> = {
  'AES_256/encrypt_decrypt': 'GOOGLE_SYMMETRIC_ENCRYPTION',
  'RSA_2048/encrypt_decrypt': 'RSA_DECRYPT_OAEP_2048_SHA256',
  'RSA_3072/encrypt_decrypt': 'RSA_DECRYPT_OAEP_3072_SHA256',
  'RSA_4096/encrypt_decrypt': 'RSA_DECRYPT_OAEP_4096_SHA256',
  'RSA_2048/sign_verify': 'RSA_SIGN_PSS_2048_SHA256',
  'RSA_3072/sign_verify': 'RSA_SIGN_PSS_3072_SHA256',
  'RSA_4096/sign_verify': 'RSA_SIGN_PSS_4096_SHA256',
  'EC_P256/sign_verify': 'EC_SIGN_P256_SHA256',
  'EC_P384/sign_verify': 'EC_SIGN_P384_SHA384',
  'HMAC_256/mac': 'HMAC_SHA256',
};

export interface AlgorithmInfo {
  readonly spec: KeySpec;
  readonly usage: KeyUsage;
  /** For signing algorithms: keyport's name, and the digest Cloud KMS expects. */
  readonly signing?: SigningAlgorithm;
  /** The hash of RSA-OAEP (encryption) or of the signature digest. */
  readonly hash?: 'sha256' | 'sha384' | 'sha512' | 'sha1';
}

/** Every Cloud KMS algorithm keyport can describe (keys made elsewhere may use any of these). */
export const ALGORITHMS: Readonly<Record<string, AlgorithmInfo>> = {
  GOOGLE_SYMMETRIC_ENCRYPTION: { spec: 'AES_256', usage: 'encrypt_decrypt' },
  RSA_DECRYPT_OAEP_2048_SHA256: { spec: 'RSA_2048', usage: 'encrypt_decrypt', hash: 'sha256' },
  RSA_DECRYPT_OAEP_3072_SHA256: { spec: 'RSA_3072', usage: 'encrypt_decrypt', hash: 'sha256' },
  RSA_DECRYPT_OAEP_4096_SHA256: { spec: 'RSA_4096', usage: 'encrypt_decrypt', hash: 'sha256' },
  RSA_DECRYPT_OAEP_4096_SHA512: { spec: 'RSA_4096', usage: 'encrypt_decrypt', hash: 'sha512' },
  RSA_DECRYPT_OAEP_2048_SHA1: { spec: 'RSA_2048', usage: 'encrypt_decrypt', hash: 'sha1' },
  RSA_DECRYPT_OAEP_3072_SHA1: { spec: 'RSA_3072', usage: 'encrypt_decrypt', hash: 'sha1' },
  RSA_DECRYPT_OAEP_4096_SHA1: { spec: 'RSA_4096', usage: 'encrypt_decrypt', hash: 'sha1' },
  RSA_SIGN_PSS_2048_SHA256: sign('RSA_2048', 'RSASSA_PSS_SHA_256'),
  RSA_SIGN_PSS_3072_SHA256: sign('RSA_3072', 'RSASSA_PSS_SHA_256'),
  RSA_SIGN_PSS_4096_SHA256: sign('RSA_4096', 'RSASSA_PSS_SHA_256'),
  RSA_SIGN_PKCS1_2048_SHA256: sign('RSA_2048', 'RSASSA_PKCS1_V1_5_SHA_256'),
  RSA_SIGN_PKCS1_3072_SHA256: sign('RSA_3072', 'RSASSA_PKCS1_V1_5_SHA_256'),
  RSA_SIGN_PKCS1_4096_SHA256: sign('RSA_4096', 'RSASSA_PKCS1_V1_5_SHA_256'),
  EC_SIGN_P256_SHA256: sign('EC_P256', 'ECDSA_SHA_256'),
  EC_SIGN_P384_SHA384: { spec: 'EC_P384', usage: 'sign_verify', signing: 'ECDSA_SHA_384', hash: 'sha384' },
  HMAC_SHA256: { spec: 'HMAC_256', usage: 'mac' },
};

function sign(spec: KeySpec, signing: SigningAlgorithm): AlgorithmInfo {
  return { spec, usage: 'sign_verify', signing, hash: 'sha256' };
}

/** Purpose and algorithm for a new key; refuses impossible spec/usage pairs. */
export function algorithmFor(spec: KeySpec, usage: KeyUsage): { purpose: Purpose; algorithm: string } {
  if (!USAGES_BY_SPEC[spec]?.includes(usage)) {
    throw new KeyportError('InvalidArgument', `a ${spec} key cannot be used for ${usage}`);
  }
  const algorithm = CREATE_ALGORITHM[`${spec}/${usage}`];
  if (algorithm === undefined)
    throw new UnsupportedError('keySpec', `no Cloud KMS algorithm for ${spec}/${usage}`);
  return { purpose: PURPOSE_BY_USAGE[usage](spec), algorithm };
}

export function describeAlgorithm(algorithm: string): AlgorithmInfo {
  const info = ALGORITHMS[algorithm];
  if (info === undefined) {
    throw new UnsupportedError('keySpec', `keyport does not support Cloud KMS algorithm ${algorithm}`);
  }
  return info;
}

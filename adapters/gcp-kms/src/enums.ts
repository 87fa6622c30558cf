/**
 * Cloud KMS enum values by number (from resources.proto), for responses whose enums arrive as
 * numbers; the client normally hands back names, which pass through unchanged.
 */
export const VERSION_STATE_NAMES: Readonly<Record<number, string>> = {
  0: 'CRYPTO_KEY_VERSION_STATE_UNSPECIFIED',
  1: 'ENABLED',
  2: 'DISABLED',
  3: 'DESTROYED',
  4: 'DESTROY_SCHEDULED',
  5: 'PENDING_GENERATION',
  6: 'PENDING_IMPORT',
  7: 'IMPORT_FAILED',
  8: 'GENERATION_FAILED',
  9: 'PENDING_EXTERNAL_DESTRUCTION',
};

export const PURPOSE_NAMES: Readonly<Record<number, string>> = {
  1: 'ENCRYPT_DECRYPT',
  5: 'ASYMMETRIC_SIGN',
  6: 'ASYMMETRIC_DECRYPT',
  7: 'RAW_ENCRYPT_DECRYPT',
  9: 'MAC',
};

export const ALGORITHM_NAMES: Readonly<Record<number, string>> = {
  1: 'GOOGLE_SYMMETRIC_ENCRYPTION',
  2: 'RSA_SIGN_PSS_2048_SHA256',
  3: 'RSA_SIGN_PSS_3072_SHA256',
  4: 'RSA_SIGN_PSS_4096_SHA256',
  5: 'RSA_SIGN_PKCS1_2048_SHA256',
  6: 'RSA_SIGN_PKCS1_3072_SHA256',
  7: 'RSA_SIGN_PKCS1_4096_SHA256',
  8: 'RSA_DECRYPT_OAEP_2048_SHA256',
  9: 'RSA_DECRYPT_OAEP_3072_SHA256',
  10: 'RSA_DECRYPT_OAEP_4096_SHA256',
  12: 'EC_SIGN_P256_SHA256',
  13: 'EC_SIGN_P384_SHA384',
  17: 'RSA_DECRYPT_OAEP_4096_SHA512',
  32: 'HMAC_SHA256',
  37: 'RSA_DECRYPT_OAEP_2048_SHA1',
  38: 'RSA_DECRYPT_OAEP_3072_SHA1',
  39: 'RSA_DECRYPT_OAEP_4096_SHA1',
};

export function enumName(value: unknown, names: Readonly<Record<number, string>>): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return names[value] ?? 'UNSPECIFIED';
  return 'UNSPECIFIED';
}

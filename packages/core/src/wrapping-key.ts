/**
 * The rule for a public key that key material is wrapped under to leave a key store (BYOK
 * export, import into a cloud KMS). Whoever holds, or can compute, its private half reads the
 * material: under RSA-1024 or RSA-768 whoever factors the modulus, with exponent 1 anyone (the
 * OAEP "ciphertext" is the encoding itself). Every import target hands out RSA-2048 to RSA-4096
 * (AWS KMS 2048/3072/4096, Cloud KMS import jobs 3072/4096, Vault/OpenBao transit 4096, Azure's
 * KEK 2048-4096, the local keystore 3072): a larger key (parameters can be the caller's to give)
 * is no target's, and an HSM refuses it only inside C_WrapKey (SoftHSM2 at 16384 bits and more,
 * CKR_GENERAL_ERROR) or spends its time on it. One rule for every wrapping side (byok's import,
 * the PKCS#11 driver's export).
 */
import type { KeyObject } from 'node:crypto';

export const MIN_WRAPPING_KEY_BITS = 2048;
export const MAX_WRAPPING_KEY_BITS = 4096;

/** Why `key` must not wrap key material (weak, or larger than any target's), or undefined when it may. */
export function wrappingKeyWeakness(key: KeyObject): string | undefined {
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  const e = key.asymmetricKeyDetails?.publicExponent ?? 0n;
  if (key.asymmetricKeyType === 'rsa' && bits > MAX_WRAPPING_KEY_BITS)
    return `the wrapping public key is RSA-${bits}; import targets hand out RSA-${MIN_WRAPPING_KEY_BITS} to RSA-${MAX_WRAPPING_KEY_BITS}, and a larger key is no target's`;
  if (key.asymmetricKeyType === 'rsa' && bits >= MIN_WRAPPING_KEY_BITS && e >= 3n && e % 2n === 1n)
    return undefined;
  return `the wrapping public key must be RSA of at least ${MIN_WRAPPING_KEY_BITS} bits with an odd exponent of 3 or more (it is ${key.asymmetricKeyType ?? 'unknown'}, ${bits} bits, e = ${e})`;
}

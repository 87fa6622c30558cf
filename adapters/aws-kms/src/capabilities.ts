/**
 * What the AWS KMS adapter declares. Every entry is what the real service offers through this
 * adapter; which emulator proves which entry is in the README's capability table.
 */
import { type Capabilities, USAGES_BY_SPEC } from '@keyport/core';

export const AWS_KMS_CAPABILITIES: Capabilities = {
  // every spec with every usage it allows (core's USAGES_BY_SPEC)
  keySpecs: USAGES_BY_SPEC,
  // EncryptionContext on symmetric keys; RSA keys refuse a non-empty context (see crypto.ts)
  context: 'native',
  dataKeys: 'native',
  listKeys: true,
  // AWS rotates backing material behind one key ARN: old ciphertexts open, versions are not named
  rotation: 'transparent',
  autoRotation: true,
  enableDisable: true,
  scheduledDeletion: 'native',
  destroyVersion: false,
  grants: 'native',
  // no native expiry: grant names carry it and sweepExpiredGrants() revokes what is past it
  grantExpiry: 'swept',
  grantConstraints: true,
  // AWS also offers RSA_AES_KEY_WRAP_*; keyport declares what an emulator here can prove
  import: ['RSAES_OAEP_SHA_256', 'RSAES_OAEP_SHA_1'],
  signingAlgorithms: ['RSASSA_PSS_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_256', 'ECDSA_SHA_256', 'ECDSA_SHA_384'],
};

/**
 * What the Cloud KMS adapter can do, as data. Every "none" and every emulated item has its reason
 * next to it; the README's capability table is generated from this and the test proofs.
 */
import { type Capabilities, USAGES_BY_SPEC } from '@keyport/core';

export interface CapabilityOptions {
  /**
   * `emulated`: generateDataKey draws the key from node:crypto and wraps it with Encrypt. Off by
   * default because IAM cannot tell the two apart: whoever may encrypt may then also make data
   * keys, so an `encrypt` grant would silently allow `generate_data_key` too. Envelope sealing does
   * not need it (keyport draws the data key itself when a provider has no data keys).
   */
  readonly dataKeys?: 'emulated' | 'none';
}

export const GCP_KMS_CAPABILITIES: Capabilities = {
  // every spec with every usage it allows (core's USAGES_BY_SPEC)
  keySpecs: USAGES_BY_SPEC,
  // additionalAuthenticatedData on Encrypt/Decrypt (symmetric keys) carries core's encodeContext.
  context: 'native',
  // Cloud KMS has no GenerateDataKey. Opt-in emulation (`dataKeys: 'emulated'`): see gcpKmsCapabilities.
  dataKeys: 'none',
  listKeys: true,
  rotation: 'versioned',
  autoRotation: true,
  enableDisable: true,
  // Cloud KMS keys and key rings cannot be deleted, only their versions destroyed.
  scheduledDeletion: 'none',
  destroyVersion: true,
  // IAM policy bindings on the crypto key.
  grants: 'native',
  // An IAM condition `request.time < timestamp(...)` on the binding.
  grantExpiry: 'native',
  // IAM conditions cannot see the request's additional authenticated data.
  grantConstraints: false,
  // Import jobs RSA_OAEP_3072_SHA256_AES_256 / RSA_OAEP_4096_SHA256_AES_256.
  import: ['RSA_AES_KEY_WRAP_SHA_256'],
  // Keys keyport creates sign with RSA-PSS (Cloud KMS binds the padding to the key version).
  signingAlgorithms: ['RSASSA_PSS_SHA_256', 'ECDSA_SHA_256', 'ECDSA_SHA_384'],
};

/** The capabilities of a provider built with these options. */
export function gcpKmsCapabilities(options: CapabilityOptions = {}): Capabilities {
  return { ...GCP_KMS_CAPABILITIES, dataKeys: options.dataKeys ?? 'none' };
}

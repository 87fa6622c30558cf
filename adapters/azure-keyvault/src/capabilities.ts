/**
 * What the adapter can do, per vault kind. Capabilities are per provider instance, and a provider
 * serves one kind: a Key Vault (software RSA and EC keys; RSA has no AAD, so the context is
 * emulated) or a Managed HSM (adds oct-HSM AES-256 keys with AES-GCM and native AAD).
 */
import type { Capabilities, KeySpec, KeyUsage } from '@keyport/core';

export type VaultKind = 'vault' | 'managedHsm';

const RSA_USAGES: readonly KeyUsage[] = ['encrypt_decrypt', 'sign_verify'];
const EC_USAGES: readonly KeyUsage[] = ['sign_verify'];

const SHARED_SPECS: Partial<Record<KeySpec, readonly KeyUsage[]>> = {
  RSA_2048: RSA_USAGES,
  RSA_3072: RSA_USAGES,
  RSA_4096: RSA_USAGES,
  EC_P256: EC_USAGES,
  EC_P384: EC_USAGES,
};

const SHARED: Omit<Capabilities, 'keySpecs' | 'context'> = {
  // keyport draws the data key (node:crypto) and the vault wraps it: there is no GenerateDataKey.
  dataKeys: 'emulated',
  listKeys: true,
  rotation: 'versioned',
  autoRotation: true,
  enableDisable: true,
  // Soft delete: the waiting period is the vault's retention (7-90 days); cancel = recover.
  scheduledDeletion: 'native',
  // Key Vault deletes whole keys, never one version.
  destroyVersion: false,
  // Access is Azure RBAC or access policies, outside the key data plane.
  grants: 'none',
  grantExpiry: 'none',
  grantConstraints: false,
  // Core's import flow is wrapped material under a provider wrapping key; Key Vault's BYOK needs a
  // key-exchange key and an HSM vendor's tool. Plain JWK import is `importJwk` (adapter extra).
  import: [],
  signingAlgorithms: ['RSASSA_PSS_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_256', 'ECDSA_SHA_256', 'ECDSA_SHA_384'],
};

/** A Key Vault (standard or premium): RSA and EC keys. */
export const KEY_VAULT_CAPABILITIES: Capabilities = {
  ...SHARED,
  keySpecs: SHARED_SPECS,
  // RSA has no AAD: keyport binds the context with AES-256-GCM under a key wrapped at the vault.
  context: 'emulated',
};

/** A Managed HSM: RSA-HSM, EC-HSM and oct-HSM AES-256 keys (AES-GCM with native AAD). */
export const MANAGED_HSM_CAPABILITIES: Capabilities = {
  ...SHARED,
  keySpecs: { AES_256: ['encrypt_decrypt'], ...SHARED_SPECS },
  // The capability describes symmetric ciphertexts (AES-GCM AAD at the HSM); RSA keys on an HSM
  // bind the context the emulated way, as on a vault.
  context: 'native',
};

export function capabilitiesFor(kind: VaultKind): Capabilities {
  return kind === 'managedHsm' ? MANAGED_HSM_CAPABILITIES : KEY_VAULT_CAPABILITIES;
}

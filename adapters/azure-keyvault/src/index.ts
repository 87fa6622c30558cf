export {
  capabilitiesFor,
  KEY_VAULT_CAPABILITIES,
  MANAGED_HSM_CAPABILITIES,
  type VaultKind,
} from './capabilities.js';
export { MODE_HSM_GCM, MODE_RSA_HYBRID, type ParsedCiphertext, parseCiphertext } from './ciphertext.js';
export { classify as classifyAzureError, mapAzureError, PROVIDER_NAME } from './errors.js';
export type { ImportJwkOptions, PortableJwk, Validity } from './extras.js';
export { AzureKeyVaultProvider } from './provider.js';
export type { AzureKeyVaultProviderOptions } from './vaults.js';

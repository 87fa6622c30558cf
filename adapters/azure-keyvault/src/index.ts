export {
  capabilitiesFor,
  KEY_VAULT_CAPABILITIES,
  MANAGED_HSM_CAPABILITIES,
  type VaultKind,
} from './capabilities.js';
export { readCiphertextFrame } from './crypto.js';
export { AZURE_ERROR_TABLE, mapAzureError, PROVIDER_NAME } from './errors.js';
export {
  backupKey,
  type ImportJwkOptions,
  importJwk,
  type PortableJwk,
  purgeDeletedKey,
  restoreKey,
  setValidity,
  type Validity,
} from './operations.js';
export type { AzureKeyVaultOptions, AzureKeyVaultProviderOptions } from './options.js';
export { AzureKeyVaultProvider, azureKeyVault } from './provider.js';

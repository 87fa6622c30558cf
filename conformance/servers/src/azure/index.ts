// Names carry an Azure prefix: src/index.ts re-exports this module next to the Cloud KMS one.
export {
  challengeHeader as azureChallengeHeader,
  type PrincipalAccess as AzureKeyVaultPrincipalAccess,
} from './auth.js';
export { TestClock as AzureKeyVaultClock } from './clock.js';
export { KeyVaultError } from './errors.js';
export { type FaultSettings as AzureKeyVaultFaultSettings, Faults as AzureKeyVaultFaults } from './faults.js';
export type { ServerMode as AzureKeyVaultMode } from './material.js';
export {
  KEY_PERMISSIONS as AZURE_KEY_PERMISSIONS,
  type KeyPermission as AzureKeyPermission,
} from './router.js';
export {
  type AzureKeyVaultServer,
  type AzureKeyVaultServerOptions,
  DEFAULT_AZURE_TOKEN,
  SUPPORTED_API_VERSIONS as AZURE_KEYVAULT_API_VERSIONS,
  startAzureKeyVaultServer,
} from './server.js';

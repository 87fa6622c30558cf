export {
  computeCapabilities,
  type ModuleOffer,
  type OaepHash,
  PKCS11_CAPABILITIES,
  readModuleOffer,
} from './capabilities.js';
export { readCiphertext } from './ciphertext.js';
export { ecdsaDerToRaw, ecdsaRawToDer } from './der.js';
export { CKR_TABLE, ckrName, ckrValue, mapPkcs11Error, PKCS11_ERROR_TABLE } from './errors.js';
export type { WrapForExportOptions } from './import.js';
export { moduleRefs } from './module-registry.js';
export { versionId, versionOfId } from './objects.js';
export type { PinSource, Pkcs11Options, Pkcs11ProviderOptions } from './options.js';
export { type Pkcs11CreateKeyRequest, Pkcs11Provider, pkcs11 } from './provider.js';

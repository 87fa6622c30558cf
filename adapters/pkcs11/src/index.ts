export type { WrapForExportOptions } from './byok.js';
export { computeCapabilities, type OaepHash } from './capabilities.js';
export { readCiphertext } from './ciphertext.js';
export { ecdsaDerToRaw, ecdsaRawToDer } from './der.js';
export { CKR_TABLE, ckrName, ckrValue, mapPkcs11Error } from './errors.js';
export { moduleRefs } from './module-registry.js';
export { versionId, versionOfId } from './objects.js';
export type { PinSource, Pkcs11ProviderOptions } from './options.js';
export { type Pkcs11CreateKeyRequest, Pkcs11Provider } from './provider.js';

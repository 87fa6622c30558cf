export {
  DATA_KEY_BYTES,
  DELETION_DAYS,
  IMPORT_PARAMETERS_TTL_MS,
  LOCAL_CAPABILITIES,
  ROTATION_PERIOD_DAYS,
} from './capabilities.js';
export { FORMAT_AES_GCM, FORMAT_RSA_OAEP } from './ciphertext.js';
export { WRAPPING_KEY_BITS } from './import.js';
export { IMPORTABLE_SPECS } from './key-material.js';
export { localKeystore, type OpenLocalKeystoreOptions, openLocalKeystore } from './open.js';
export { LocalProvider } from './provider.js';
export { DEFAULT_SCRYPT, SCRYPT_LIMITS, type ScryptParams } from './sealed-file.js';

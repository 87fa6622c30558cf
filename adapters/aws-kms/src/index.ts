export { AWS_KMS_CAPABILITIES } from './capabilities.js';
export type {
  AwsDataKeyResult,
  AwsDecryptResult,
  AwsEncryptResult,
  ReEncryptRequest,
  ReEncryptResult,
} from './crypto.js';
export { AWS_ERROR_TABLE, mapAwsError } from './errors.js';
export { decodeGrantName, encodeGrantName, type RetireGrantTarget } from './grants.js';
export type { AwsImportParametersRequest } from './import.js';
export {
  deleteImportedKeyMaterial,
  generateDataKeyWithoutPlaintext,
  type KeyportReEncryptRequest,
  reEncrypt,
  retireGrant,
} from './operations.js';
export type { AwsKmsProviderOptions } from './options.js';
export { AwsKmsProvider, awsKms } from './provider.js';

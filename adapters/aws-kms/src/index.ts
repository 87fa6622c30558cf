export { AWS_KMS_CAPABILITIES } from './capabilities.js';
export type { AwsKmsProviderOptions } from './clients.js';
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
export { AwsKmsProvider } from './provider.js';

import type { AwsKmsProviderOptions } from './clients.js';
import { AwsKmsProvider } from './provider.js';

/** `new Keyport({ providers: [awsKms({ region: 'eu-west-1' })] })` */
export function awsKms(options: AwsKmsProviderOptions = {}): AwsKmsProvider {
  return new AwsKmsProvider(options);
}

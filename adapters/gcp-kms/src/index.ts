/**
 * @keyport/gcp-kms: Google Cloud KMS for keyport, over gRPC (default) or REST.
 *
 *   import { Keyport } from '@keyport/core';
 *   import { GcpKmsProvider } from '@keyport/gcp-kms';
 *   const keys = new Keyport({ providers: [new GcpKmsProvider({ keyRing: 'projects/p/locations/global/keyRings/app' })] });
 */
export { type CapabilityOptions, GCP_KMS_CAPABILITIES, gcpKmsCapabilities } from './capabilities.js';
export { crc32c } from './crc32c.js';
export { GRPC_CODE_MAP, HTTP_CODE_MAP, mapGcpError } from './errors.js';
export { ROLES_BY_OPERATION } from './grants.js';
export type { GcpKmsProviderOptions } from './options.js';
export { GcpKmsProvider } from './provider.js';

import type { GcpKmsProviderOptions } from './options.js';
import { GcpKmsProvider } from './provider.js';

export function createGcpKmsProvider(options: GcpKmsProviderOptions = {}): GcpKmsProvider {
  return new GcpKmsProvider(options);
}

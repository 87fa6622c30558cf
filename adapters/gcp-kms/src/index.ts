/**
 * @keyport/gcp-kms: Google Cloud KMS for keyport, over gRPC (default) or REST.
 *
 *   import { createKeyport } from '@keyport/core';
 *   import { gcpKms } from '@keyport/gcp-kms';
 *   const keys = createKeyport({ providers: { gcp: gcpKms({ keyRing: 'projects/p/locations/global/keyRings/app' }) } });
 */
export { type CapabilityOptions, GCP_KMS_CAPABILITIES, gcpKmsCapabilities } from './capabilities.js';
export { GCP_KMS_ERROR_TABLE, mapGcpError } from './errors.js';
export { ROLES_BY_OPERATION } from './grants.js';
export { restoreKeyVersion } from './operations.js';
export type { GcpKmsProviderOptions } from './options.js';
export { GcpKmsProvider, gcpKms, gcpKms as createGcpKmsProvider } from './provider.js';
export { crc32c } from './rpc.js';

// Names carry a Cloud KMS prefix: src/index.ts re-exports this module next to the Azure one.

export { SYNTHETIC_ATTESTATION_MARKER as CLOUD_KMS_SYNTHETIC_ATTESTATION_MARKER } from './attestation.js';
export { ATTESTATION_TEST_CA_PEM as CLOUD_KMS_ATTESTATION_TEST_CA_PEM } from './attestation-ca.js';
export type { TestClock as CloudKmsClock } from './clock.js';
export { crc32c } from './crc32c.js';
export type {
  FaultController as CloudKmsFaultController,
  FaultSettings as CloudKmsFaultSettings,
} from './faults.js';
export type { Binding as CloudKmsIamBinding } from './iam.js';
export {
  type CloudKmsServer,
  type CloudKmsServerOptions,
  PRINCIPAL_HEADER as CLOUD_KMS_PRINCIPAL_HEADER,
  startCloudKmsServer,
} from './server.js';

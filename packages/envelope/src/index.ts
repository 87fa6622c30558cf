export { type CacheStats, DataKeyCache, type DataKeyCacheOptions } from './cache.js';
export type { EncryptedDataKey } from './header.js';
export { DEFAULT_LIMITS, type OpenLimits } from './limits.js';
export {
  type DataKeySource,
  DataKeyUnavailableError,
  type RecipientLike,
  type TrustEntry,
  type UnwrapAttempt,
} from './materials.js';
export {
  type MessageInfo,
  type OpenEnvelopeOptions,
  type OpenOptions,
  type OpenResult,
  openEnvelope,
  openStream,
  type StreamOpenOptions,
} from './open.js';
export {
  AWS_KMS_RSA_PROVIDER_ID,
  type AwsKmsRsaRecipientOptions,
  awsKmsRsaRecipient,
} from './recipients/aws-kms-rsa.js';
export {
  AWS_KMS_PROVIDER_ID,
  type AwsDiscoveryFilter,
  anyKeyOf,
  type DiscoveryFilter,
  type GcpDiscoveryFilter,
  isAwsAccountId,
  isAwsPartition,
  isGcpProject,
  kmsRecipient,
} from './recipients/kms.js';
export { type RawAesRecipientOptions, rawAesRecipient } from './recipients/raw-aes.js';
export { type EcdhCurve, type RawEcdhRecipientOptions, rawEcdhRecipient } from './recipients/raw-ecdh.js';
export { type RawRsaRecipientOptions, type RsaPadding, rawRsaRecipient } from './recipients/raw-rsa.js';
export type { GeneratedDataKey, Recipient, RecipientEnv } from './recipients/recipient.js';
export { type RewrapOptions, rewrapEnvelope, rewrapStream } from './rewrap.js';
export { DEFAULT_FRAME_LENGTH, type SealEnvelopeOptions, type SealOptions, sealEnvelope } from './seal.js';
export { createOpenStream, createSealStream, sealStream } from './stream.js';
export {
  DEFAULT_SUITE,
  PUBLIC_KEY_CONTEXT_KEY,
  RESERVED_CONTEXT_PREFIX,
  type SealSuiteId,
  type SuiteId,
} from './suites.js';

export { type AzureBlobStoreOptions, azureBlobStore } from './azure-blob.js';
export { type GcsStoreOptions, gcsStore } from './gcs.js';
export { type ObjectLocation, parseObjectLocation, type StoreEndpoints } from './location.js';
export { type S3StoreOptions, s3Store } from './s3.js';
export {
  DEFAULT_PART_SIZE,
  type ObjectAttributes,
  ObjectChangedError,
  type ObjectEntry,
  type ObjectRead,
  type ObjectStore,
  type PutOptions,
  type StoreProvider,
  type WriteCondition,
} from './store.js';
export { CallStats, type ProviderCalls, TokenBucket } from './throttle.js';

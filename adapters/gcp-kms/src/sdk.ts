/**
 * `@google-cloud/kms`, loaded on the provider's first call rather than at import: the client
 * library (gax, gRPC, protobufs, auth) costs several hundred milliseconds to load.
 */
import { lazyPeer } from '@keyport/core';

export const kmsSdk = lazyPeer('@google-cloud/kms', 'gcp-kms', () => import('@google-cloud/kms'));

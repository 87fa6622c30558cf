/**
 * `@google-cloud/kms`, loaded on the provider's first call rather than at import: the client
 * library (gax, gRPC, protobufs, auth) costs several hundred milliseconds to load.
 */
import { type LazyPeer, lazyPeer } from '@keyport/core';
import type { GoogleAuth } from 'google-auth-library';

export const kmsSdk = lazyPeer('@google-cloud/kms', 'gcp-kms', () => import('@google-cloud/kms'));

/** google-auth-library, for the GoogleAuth keyport puts around a given `authClient` over REST (options.ts). */
export const authSdk: LazyPeer<{ GoogleAuth: typeof GoogleAuth }> = lazyPeer(
  'google-auth-library',
  'gcp-kms',
  async () => ({ GoogleAuth: (await import('google-auth-library')).GoogleAuth }),
);

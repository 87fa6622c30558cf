/** `@aws-sdk/client-kms`, loaded on the first call rather than at import (it costs 100+ ms to load). */
import type * as KmsSdk from '@aws-sdk/client-kms';
import { type LazyPeer, lazyPeer } from '@keyport/core';
import { PROVIDER_NAME } from './errors.js';

export const kmsSdk: LazyPeer<typeof KmsSdk> = lazyPeer(
  '@aws-sdk/client-kms',
  PROVIDER_NAME,
  () => import('@aws-sdk/client-kms'),
);

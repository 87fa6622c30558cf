/**
 * The Azure SDK packages, loaded on first use rather than at import (they cost several hundred
 * milliseconds): `@azure/identity` only when no credential was given.
 */
import type * as IdentitySdk from '@azure/identity';
import type * as KeysSdk from '@azure/keyvault-keys';
import { lazyPeer } from '@keyport/core';
import { PROVIDER_NAME } from './errors.js';

export const keysSdk = lazyPeer<typeof KeysSdk>(
  '@azure/keyvault-keys',
  PROVIDER_NAME,
  () => import('@azure/keyvault-keys'),
);
export const identitySdk = lazyPeer<typeof IdentitySdk>(
  '@azure/identity',
  PROVIDER_NAME,
  () => import('@azure/identity'),
);

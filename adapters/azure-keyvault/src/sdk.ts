/**
 * The Azure SDK packages, loaded on first use rather than at import: `@azure/keyvault-keys` and
 * `@azure/identity` cost several hundred milliseconds to load, which an app pays at start-up
 * even when it never calls the vault (or passes its own credential). Each is imported once; a
 * missing peer dependency becomes a KeyportError naming the package to install.
 */
import type * as IdentitySdk from '@azure/identity';
import type * as KeysSdk from '@azure/keyvault-keys';
import { KeyportError } from '@keyport/core';
import { PROVIDER_NAME } from './errors.js';

function isMissing(e: unknown, pkg: string): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return (
    (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
    String((e as { message?: unknown }).message).includes(pkg)
  );
}

/** `load()` once; a failed load is not cached, so installing the package and retrying works. */
export function lazy<T>(pkg: string, load: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= load().catch((e: unknown) => {
      pending = undefined;
      if (!isMissing(e, pkg)) throw e;
      throw new KeyportError(
        'Unsupported',
        `the Azure Key Vault adapter needs the peer dependency ${pkg}: install it (npm install ${pkg})`,
        { provider: PROVIDER_NAME, cause: e, retryable: false },
      );
    });
    return pending;
  };
}

export const keysSdk: () => Promise<typeof KeysSdk> = lazy(
  '@azure/keyvault-keys',
  () => import('@azure/keyvault-keys'),
);
export const identitySdk: () => Promise<typeof IdentitySdk> = lazy(
  '@azure/identity',
  () => import('@azure/identity'),
);

/**
 * `@aws-sdk/client-kms`, loaded on first use rather than at import: the client and its command
 * classes cost well over 100 ms to load, which an app would pay at start-up even when it never
 * calls KMS. `loadKmsSdk()` imports it once (KmsClients awaits it before handing out any client);
 * `kmsSdk()` is the loaded module for the code that runs after that. A missing peer dependency
 * becomes a KeyportError naming the package to install.
 */
import type * as KmsSdk from '@aws-sdk/client-kms';
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
        `the AWS KMS adapter needs the peer dependency ${pkg}: install it (npm install ${pkg})`,
        { provider: PROVIDER_NAME, cause: e, retryable: false },
      );
    });
    return pending;
  };
}

let loaded: typeof KmsSdk | undefined;

export const loadKmsSdk: () => Promise<typeof KmsSdk> = lazy('@aws-sdk/client-kms', async () => {
  loaded = await import('@aws-sdk/client-kms');
  return loaded;
});

/** The loaded SDK. Only code holding a client calls this, and a client exists only after the load. */
export function kmsSdk(): typeof KmsSdk {
  if (loaded === undefined) {
    throw new KeyportError('Internal', '@aws-sdk/client-kms used before it was loaded', {
      provider: PROVIDER_NAME,
    });
  }
  return loaded;
}

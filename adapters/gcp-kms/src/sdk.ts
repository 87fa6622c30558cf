/**
 * `@google-cloud/kms`, loaded on first use rather than at import: the client library (gax, gRPC,
 * protobufs, auth) costs several hundred milliseconds to load, which an app would pay at
 * start-up even when it never calls KMS. It is imported once; a missing peer dependency becomes a
 * KeyportError naming the package to install (the provider fills in its name).
 */
import type * as KmsSdk from '@google-cloud/kms';
import { KeyportError } from '@keyport/core';

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
        `the Google Cloud KMS adapter needs the peer dependency ${pkg}: install it (npm install ${pkg})`,
        { cause: e, retryable: false },
      );
    });
    return pending;
  };
}

export const kmsSdk: () => Promise<typeof KmsSdk> = lazy(
  '@google-cloud/kms',
  () => import('@google-cloud/kms'),
);

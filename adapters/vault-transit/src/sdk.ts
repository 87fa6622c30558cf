/**
 * node-vault, loaded on first use rather than at import: it costs more to load than an app
 * should pay at start-up for a provider it may never call. It is imported once; a missing peer
 * dependency becomes a KeyportError naming the package to install.
 */
import { KeyportError } from '@keyport/core';
import type NodeVault from 'node-vault';

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
        `the Vault Transit adapter needs the peer dependency ${pkg}: install it (npm install ${pkg})`,
        { provider: 'hcvault', cause: e, retryable: false },
      );
    });
    return pending;
  };
}

export const loadNodeVault: () => Promise<typeof NodeVault> = lazy('node-vault', async () => {
  const loaded = await import('node-vault');
  return loaded.default;
});

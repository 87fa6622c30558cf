/**
 * A provider SDK loaded on first use rather than at import: SDKs cost 100 ms to several hundred
 * to load, which an app would pay at start-up even when it never calls that provider. Every
 * adapter's `sdk.ts` is one `lazyPeer` call. The `import()` stays in the adapter (a literal
 * specifier, so bundlers still see it); this module only owns the once-only load, the retry
 * after a failed load, and the error naming the peer dependency to install.
 */
import { KeyportError } from './errors.js';

export interface LazyPeer<T> {
  /** Imports the package once; a failed load is not cached, so installing it and retrying works. */
  load(): Promise<T>;
  /** The loaded module, for code that only runs after `load()` resolved (e.g. holds a client). */
  get(): T;
}

function isMissing(e: unknown, pkg: string): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return (
    (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
    String((e as { message?: unknown }).message).includes(pkg)
  );
}

/** `pkg`: the peer dependency's name; `provider`: the driver name errors carry. */
export function lazyPeer<T>(pkg: string, provider: string, importer: () => Promise<T>): LazyPeer<T> {
  let pending: Promise<T> | undefined;
  let loaded: T | undefined;
  return {
    load() {
      pending ??= importer().then(
        (m) => {
          loaded = m;
          return m;
        },
        (e: unknown) => {
          pending = undefined;
          if (!isMissing(e, pkg)) throw e;
          throw new KeyportError(
            'Unsupported',
            `the ${provider} driver needs the peer dependency ${pkg}: install it (npm install ${pkg})`,
            { provider, cause: e, retryable: false },
          );
        },
      );
      return pending;
    },
    get() {
      if (loaded === undefined) {
        throw new KeyportError('Internal', `${pkg} used before it was loaded`, { provider });
      }
      return loaded;
    },
  };
}

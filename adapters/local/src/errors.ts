import { type ErrorCode, KeyportError, toKeyportError } from '@keyport/core';

/** The provider name carried by every error and audit event of this adapter. */
export const PROVIDER_NAME = 'local';

/**
 * Builds this adapter's errors. Messages are fixed text plus names (key names, principals,
 * versions): never key material, plaintext or context values.
 */
export function localError(code: ErrorCode, message: string, keyUri?: string, cause?: unknown): KeyportError {
  return new KeyportError(code, message, {
    provider: PROVIDER_NAME,
    keyUri,
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Throws `Aborted` when the caller's signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, keyUri?: string): void {
  if (signal?.aborted) throw localError('Aborted', 'the operation was aborted', keyUri);
}

/** Runs a core helper (URI parsing, context encoding) and labels its errors with this provider. */
export function labelled<T>(keyUri: string | undefined, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw toKeyportError(error, { provider: PROVIDER_NAME, ...(keyUri !== undefined ? { keyUri } : {}) });
  }
}

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

/**
 * The error for a fired signal: `Timeout` when it fired for a deadline (`AbortSignal.timeout`,
 * core's call policy reports its own), `Aborted` when the caller aborted.
 */
export function abortError(
  signal: AbortSignal | undefined,
  keyUri?: string,
  what = 'the operation',
): KeyportError {
  const reason: unknown = signal?.reason;
  if (reason instanceof KeyportError)
    return reason.withDetails({ provider: PROVIDER_NAME, ...(keyUri ? { keyUri } : {}) });
  if (reason instanceof Error && reason.name === 'TimeoutError') {
    return localError('Timeout', `${what} did not finish before its deadline`, keyUri);
  }
  return localError('Aborted', `${what} was aborted`, keyUri);
}

/** Throws `Aborted` (or `Timeout`, see abortError) when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, keyUri?: string): void {
  if (signal?.aborted) throw abortError(signal, keyUri);
}

/** Runs a core helper (URI parsing, context encoding) and labels its errors with this provider. */
export function labelled<T>(keyUri: string | undefined, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw toKeyportError(error, { provider: PROVIDER_NAME, ...(keyUri !== undefined ? { keyUri } : {}) });
  }
}

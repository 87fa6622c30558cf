/**
 * Key Vault errors -> KeyportError codes. The service answers `{ error: { code, message,
 * innererror? } }` with an HTTP status; the SDK throws a RestError carrying `statusCode`, `code`
 * and the parsed body in `details`. The table below is the README's error table, and
 * `test/errors.test.ts` checks each row. Messages are written here from status and codes only:
 * service messages can name keys and principals, so they stay in `cause`.
 */
import { type ErrorCode, KeyportError } from '@keyport/core';

export const PROVIDER_NAME = 'azurekeyvault';

/** 403 inner error codes that describe the key's state rather than the caller's rights. */
export const KEY_STATE_INNER_CODES: ReadonlySet<string> = new Set([
  'KeyDisabled',
  'KeyExpired',
  'KeyNotYetValid',
]);

/** Socket-level failures: the vault could not be reached or dropped the connection. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'REQUEST_SEND_ERROR',
]);

/** @azure/identity failures: no credential could produce a token. */
const CREDENTIAL_ERRORS = new Set([
  'CredentialUnavailableError',
  'AuthenticationError',
  'AggregateAuthenticationError',
  'AuthenticationRequiredError',
]);

interface HeadersLike {
  get(name: string): string | undefined;
}

interface RestErrorShape {
  name?: unknown;
  code?: unknown;
  statusCode?: unknown;
  message?: unknown;
  details?: { error?: { code?: unknown; innerError?: { code?: unknown }; innererror?: { code?: unknown } } };
  response?: { headers?: HeadersLike };
}

function shape(error: unknown): RestErrorShape | undefined {
  return typeof error === 'object' && error !== null ? (error as RestErrorShape) : undefined;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export function requestIdOf(error: unknown): string | undefined {
  return str(shape(error)?.response?.headers?.get('x-ms-request-id'));
}

/** The inner error code Key Vault adds to some 403s (KeyDisabled, ForbiddenByPolicy, ...). */
export function innerCodeOf(error: unknown): string | undefined {
  const e = shape(error)?.details?.error;
  return str(e?.innerError?.code) ?? str(e?.innererror?.code);
}

export function statusOf(error: unknown): number | undefined {
  const s = shape(error)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

/** Retry-After (seconds or an HTTP date) or retry-after-ms / x-ms-retry-after-ms, in ms. */
export function retryAfterMsOf(error: unknown, now: () => number = Date.now): number | undefined {
  const headers = shape(error)?.response?.headers;
  if (headers === undefined) return undefined;
  for (const name of ['retry-after-ms', 'x-ms-retry-after-ms']) {
    const ms = Number(headers.get(name));
    if (headers.get(name) !== undefined && Number.isFinite(ms) && ms >= 0) return ms;
  }
  const value = headers.get('retry-after');
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now());
}

interface Mapped {
  readonly code: ErrorCode;
  readonly why: string;
}

/** The code for a status and service error code (+ inner code on 403). */
export function classify(status: number, code: string | undefined, inner: string | undefined): Mapped {
  if (status === 400)
    return { code: 'InvalidArgument', why: `the vault refused the request (${code ?? '400'})` };
  if (status === 401) return { code: 'AccessDenied', why: 'the vault did not accept the credential (401)' };
  if (status === 403) {
    if (inner !== undefined && KEY_STATE_INNER_CODES.has(inner)) {
      return { code: 'KeyStateConflict', why: `the key cannot be used in its current state (${inner})` };
    }
    if (inner === 'KeyOperationForbidden') {
      return {
        code: 'InvalidArgument',
        why: 'the key does not allow this operation (KeyOperationForbidden)',
      };
    }
    return { code: 'AccessDenied', why: `the caller lacks the permission (${inner ?? code ?? '403'})` };
  }
  if (status === 404) return { code: 'NotFound', why: `the key was not found (${code ?? '404'})` };
  if (status === 409) {
    // A soft-deleted key holds its name until it is purged (or recovered); restore over a live name too.
    return { code: 'AlreadyExists', why: 'the name is taken by a live or soft-deleted key (409 Conflict)' };
  }
  if (status === 429) return { code: 'Throttled', why: 'the vault throttled the request (429)' };
  if (status >= 500) return { code: 'Unavailable', why: `the vault answered ${status}` };
  return { code: 'Internal', why: `unexpected answer from the vault (${status})` };
}

/**
 * Maps anything a Key Vault call can throw. KeyportErrors pass through; values that are not SDK,
 * network or credential errors return undefined so core's default (Internal) applies.
 */
export function mapAzureError(error: unknown): KeyportError | undefined {
  if (error instanceof KeyportError) return error;
  const e = shape(error);
  if (e === undefined) return undefined;
  const name = str(e.name) ?? '';
  const requestId = requestIdOf(error);
  const base = { provider: PROVIDER_NAME, requestId, cause: error };
  if (name === 'AbortError') {
    return new KeyportError('Aborted', 'the operation was aborted', { ...base, retryable: false });
  }
  if (CREDENTIAL_ERRORS.has(name)) {
    return new KeyportError('AccessDenied', `no Azure token could be obtained (${name})`, base);
  }
  const status = statusOf(error);
  const code = str(e.code);
  if (status === undefined) {
    if (code !== undefined && NETWORK_CODES.has(code)) {
      return new KeyportError('Unavailable', `the vault could not be reached (${code})`, base);
    }
    return name === 'RestError'
      ? new KeyportError('Unavailable', 'the vault request failed without an answer', base)
      : undefined;
  }
  const mapped = classify(status, code, innerCodeOf(error) ?? disabledFromMessage(status, e.message));
  const retryAfterMs = status === 429 || status === 503 ? retryAfterMsOf(error) : undefined;
  return new KeyportError(mapped.code, `Azure Key Vault: ${mapped.why}`, {
    ...base,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });
}

/**
 * Some service answers name a disabled key only in the message (no inner code); the wording is
 * documented ("Operation X is not allowed on a disabled key."), so it is matched as a fallback.
 */
function disabledFromMessage(status: number, message: unknown): string | undefined {
  if (status !== 403 || typeof message !== 'string') return undefined;
  return /not allowed on a disabled key/i.test(message) ? 'KeyDisabled' : undefined;
}

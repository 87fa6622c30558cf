/**
 * Key Vault answers -> KeyportError codes, as one table (the README prints it, and
 * test/errors.test.ts walks every row). The SDK throws a RestError with the HTTP status, the
 * service's error code and, on some 403s, an inner code; @azure/identity throws named credential
 * errors. Messages name statuses and codes only: service messages can name keys and principals,
 * so they stay in `cause`.
 */
import {
  type ErrorTable,
  errorFromTable,
  errorMapping,
  errorQuotesSecret,
  KeyportError,
  MAX_TIMER_MS,
  networkErrorCode,
  quotesSecret,
  tlsErrorCode,
} from '@keyport/core';

export const PROVIDER_NAME = 'azurekeyvault';

/**
 * Rows: an error name, an HTTP status, `403/<inner code>` and `409/<inner code>`, `5xx`,
 * `challenge` (the SDK refused the vault's authentication challenge), `tls` (the vault's
 * certificate refused: retrying cannot help), `network` (no answer: socket errors, a RestError
 * without status) and `other` (any other status).
 */
export const AZURE_ERROR_TABLE: ErrorTable = {
  AbortError: { code: 'Aborted', retryable: false },
  CredentialUnavailableError: { code: 'AccessDenied' },
  AuthenticationError: { code: 'AccessDenied' },
  AggregateAuthenticationError: { code: 'AccessDenied' },
  AuthenticationRequiredError: { code: 'AccessDenied' },
  // The vault's 401 challenge names a resource whose domain is not the vault URL's: the SDK sends
  // no token to it. The server is not the configured vault (a wrong vaultUrl, or a proxy or
  // custom domain in front of one): retrying cannot help.
  challenge: { code: 'AccessDenied', retryable: false },
  tls: { code: 'Unavailable', retryable: false },
  network: { code: 'Unavailable' },
  '400': { code: 'InvalidArgument' },
  '401': { code: 'AccessDenied' },
  '403': { code: 'AccessDenied' },
  // Inner codes that describe the key's state or key_ops rather than the caller's rights.
  '403/KeyDisabled': { code: 'KeyStateConflict' },
  '403/KeyExpired': { code: 'KeyStateConflict' },
  '403/KeyNotYetValid': { code: 'KeyStateConflict' },
  '403/KeyOperationForbidden': { code: 'InvalidArgument' },
  '404': { code: 'NotFound' },
  // The vault, or a gateway before it, stopped waiting for the request: it was not served, and a
  // later attempt can be. Neither the caller's nor the vault's bug, so not Internal.
  '408': { code: 'Unavailable' },
  // A soft-deleted key holds its name until purged or recovered: the *name* is taken.
  '409': { code: 'AlreadyExists' },
  // A key Key Vault is still deleting or recovering (a restore recovers too): it answers "retry
  // later", and a purge sent right after a deletion meets this. Passing, so retried.
  '409/ObjectIsBeingDeleted': { code: 'KeyStateConflict', retryable: true },
  '409/ObjectIsBeingRecovered': { code: 'KeyStateConflict', retryable: true },
  '429': { code: 'Throttled' },
  // The server does not implement the operation (a Key Vault look-alike, or a proxy in front of
  // the vault): asking again gets the same answer, unlike the passing 5xx below.
  '501': { code: 'Unsupported', capability: 'operation' },
  '5xx': { code: 'Unavailable' },
  other: { code: 'Internal' },
};

interface RestErrorShape {
  name?: unknown;
  code?: unknown;
  statusCode?: unknown;
  message?: unknown;
  details?: {
    error?: { code?: unknown; innerError?: { code?: unknown }; innererror?: { code?: unknown } };
  };
  response?: { headers?: { get(name: string): string | undefined } };
}

const shape = (error: unknown): RestErrorShape =>
  typeof error === 'object' && error !== null ? (error as RestErrorShape) : {};
const word = (v: unknown): string | undefined =>
  typeof v === 'string' && /^[A-Za-z]{1,64}$/.test(v) ? v : undefined;

export function statusOf(error: unknown): number | undefined {
  const s = shape(error).statusCode;
  return typeof s === 'number' ? s : undefined;
}

export function requestIdOf(error: unknown): string | undefined {
  const id = shape(error).response?.headers?.get('x-ms-request-id');
  return typeof id === 'string' && id !== '' ? id : undefined;
}

/**
 * The inner code of a 403 (KeyDisabled, ForbiddenByPolicy, ...) or a 409 (ObjectIsBeingDeleted,
 * ...). Some 403s name a disabled key only in their documented message ("Operation X is not
 * allowed on a disabled key.").
 */
function innerCodeOf(error: unknown, status: number): string | undefined {
  const e = shape(error);
  const inner = word(e.details?.error?.innerError?.code) ?? word(e.details?.error?.innererror?.code);
  if (inner !== undefined) return inner;
  return status === 403 && typeof e.message === 'string' && /not allowed on a disabled key/i.test(e.message)
    ? 'KeyDisabled'
    : undefined;
}

/**
 * Retry-After (seconds or an HTTP date) or retry-after-ms / x-ms-retry-after-ms, in whole ms no
 * longer than a timer can wait: core sleeps this long, and its sleep takes integers up to
 * MAX_TIMER_MS only (`retry-after-ms: 1.5`, `retry-after: 99999999999` or a date in year 9999
 * made the retry fail with InvalidArgument instead of waiting).
 */
export function retryAfterMsOf(error: unknown, now: () => number = Date.now): number | undefined {
  const ms = rawRetryAfterMs(error, now);
  return ms === undefined ? undefined : Math.min(Math.ceil(ms), MAX_TIMER_MS);
}

function rawRetryAfterMs(error: unknown, now: () => number): number | undefined {
  const headers = shape(error).response?.headers;
  if (headers === undefined) return undefined;
  for (const name of ['retry-after-ms', 'x-ms-retry-after-ms']) {
    // Digits only: Number('') and Number(' ') are 0, which would hide a Retry-After beside them.
    const value = headers.get(name)?.trim();
    if (value !== undefined && /^\d+(\.\d+)?$/.test(value) && Number.isFinite(Number(value))) {
      return Number(value);
    }
  }
  const value = headers.get('retry-after')?.trim();
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now());
}

/**
 * @azure/keyvault-common's refusal of a challenge whose resource is not the vault's domain, a
 * plain Error known by its message only. Its text (naming the resource host) stays in `cause`.
 */
const CHALLENGE_MISMATCH = /^The challenge resource '[^']*' does not match the requested domain\b/;

const CHALLENGE_MESSAGE =
  "the vault's authentication challenge names a resource outside the vault URL's domain, so no " +
  "token was sent: check that vaultUrl is your vault's own URL (https://<name>.vault.azure.net, " +
  "https://<name>.managedhsm.azure.net or your national cloud's domain), not a proxy or custom " +
  'domain; set clientOptions.disableChallengeResourceVerification only for a server you trust';

/** The table row for an error and the message naming it; undefined for values that are not Azure's. */
function rowOf(error: unknown): { row: string; message: string } | undefined {
  const e = shape(error);
  const status = statusOf(error);
  const name = word(e.name) ?? '';
  if (status === undefined) {
    if (typeof e.message === 'string' && CHALLENGE_MISMATCH.test(e.message)) {
      return { row: 'challenge', message: CHALLENGE_MESSAGE };
    }
    if (/Error$/.test(name) && errorMapping(AZURE_ERROR_TABLE, name) !== undefined) {
      return {
        row: name,
        message: name === 'AbortError' ? 'the operation was aborted' : `no Azure token (${name})`,
      };
    }
    const tls = tlsErrorCode(error);
    if (tls !== undefined) return { row: 'tls', message: `the vault's TLS certificate was refused (${tls})` };
    const network = networkErrorCode(error);
    if (network === undefined && name !== 'RestError') return undefined;
    return { row: 'network', message: `the vault could not be reached (${network ?? 'no answer'})` };
  }
  const inner = status === 403 || status === 409 ? innerCodeOf(error, status) : undefined;
  // PARSE_ERROR is the SDK's own code (not a word, so not printed as the service's).
  const malformed = e.code === PARSE_ERROR ? ' with a body that is not JSON' : '';
  const answer = `${status}${word(e.code) ? ` ${e.code}` : ''}${inner ? `/${inner}` : ''}${malformed}`;
  const row = [`${status}/${inner}`, String(status), status >= 500 ? '5xx' : 'other'].find(
    (key) => errorMapping(AZURE_ERROR_TABLE, key) !== undefined,
  );
  return { row: row ?? 'other', message: `Azure Key Vault answered ${answer}` };
}

/** The SDK's code for an answer whose body did not parse. */
const PARSE_ERROR = 'PARSE_ERROR';
/** The answer headers a withheld error keeps: those mapAzureError reads (request id, retry waits). */
const KEPT_HEADERS = ['x-ms-request-id', 'retry-after', 'retry-after-ms', 'x-ms-retry-after-ms'];

/**
 * An SDK error from a call whose answer carries key material (decrypt, unwrapKey), with what the
 * answer said withheld. The SDK quotes a body it cannot parse whole in its error's message (and
 * keeps the response on the error), so a cut-short or padded answer holding a plaintext put it,
 * as `cause`, into every logged KeyportError. Kept: status, the SDK's and the service's codes, the
 * request id and retry headers, so mapping and retries are unchanged.
 */
export class WithheldAnswerError extends Error {
  override readonly name = 'RestError';
  readonly statusCode: number | undefined;
  readonly code: string | undefined;
  readonly details: { error: { code?: string; innerError?: { code: string } } } | undefined;
  declare readonly response: { headers: { get(name: string): string | undefined } };

  /** `secrets`: the request's key material; a kept header quoting any of it is dropped. */
  constructor(error: RestErrorShape, secrets: readonly Uint8Array[] = []) {
    const status = statusOf(error);
    const code = error.code === PARSE_ERROR ? PARSE_ERROR : word(error.code);
    // The documented text of a 403 on a disabled key, read before the message is dropped.
    const inner =
      status === undefined
        ? undefined
        : (innerCodeOf(error, status) ??
          (typeof error.message === 'string' && /not allowed on a disabled key/i.test(error.message)
            ? 'KeyDisabled'
            : undefined));
    super(
      `Azure Key Vault answered ${status ?? 'without a status'}${code ? ` ${code}` : ''}${
        code === PARSE_ERROR ? ' with a body that is not JSON' : ''
      }: the answer's text is withheld, as it may carry key material`,
    );
    this.statusCode = status;
    this.code = code;
    const serviceCode = word(error.details?.error?.code);
    this.details =
      serviceCode !== undefined || inner !== undefined
        ? {
            error: {
              ...(serviceCode !== undefined ? { code: serviceCode } : {}),
              ...(inner !== undefined ? { innerError: { code: inner } } : {}),
            },
          }
        : undefined;
    const kept = new Map<string, string>();
    for (const name of KEPT_HEADERS) {
      const value = error.response?.headers?.get(name);
      // The endpoint chooses its headers: a request id quoting the plaintext it was sent would
      // otherwise become the KeyportError's requestId, printed with every log of it.
      if (typeof value === 'string' && !secrets.some((s) => quotesSecret(value, s))) kept.set(name, value);
    }
    // Not enumerable, as the SDK's own: printed errors show the request id at the top already.
    Object.defineProperty(this, 'response', {
      value: { headers: { get: (name: string) => kept.get(name.toLowerCase()) } },
      enumerable: false,
    });
  }
}

/** An SDK error with the answer's text withheld (see WithheldAnswerError); anything else as it is. */
export function withholdAnswer(error: unknown, secrets: readonly Uint8Array[] = []): unknown {
  return shape(error).name === 'RestError' && !(error instanceof WithheldAnswerError)
    ? new WithheldAnswerError(shape(error), secrets)
    : error;
}

/**
 * An SDK error from a call whose request carries key material (encrypt, wrapKey, importKey), with
 * its text withheld when it quotes any of `secrets` (core's errorQuotesSecret: Key Vault itself
 * does not quote requests, a proxy or look-alike server may); anything else as it is.
 */
export function withholdEcho(error: unknown, secrets: readonly Uint8Array[]): unknown {
  return errorQuotesSecret(error, secrets) ? withholdAnswer(error, secrets) : error;
}

/**
 * Maps anything a Key Vault call can throw. KeyportErrors pass through; values that are not SDK,
 * network or credential errors return undefined so core's default (Internal) applies.
 */
export function mapAzureError(error: unknown): KeyportError | undefined {
  if (error instanceof KeyportError) return error;
  const found = rowOf(error);
  if (found === undefined) return undefined;
  const status = statusOf(error);
  const retryAfterMs = status === 429 || status === 503 ? retryAfterMsOf(error) : undefined;
  return errorFromTable(AZURE_ERROR_TABLE, found.row, found.message, {
    provider: PROVIDER_NAME,
    requestId: requestIdOf(error),
    cause: error,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });
}

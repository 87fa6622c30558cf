/**
 * The one shape every driver's error mapping takes: a table from what the provider answers (an
 * exception name, a gRPC status, a CKR_ constant, an HTTP status...) to a neutral code, read by
 * `errorFromTable`. The table is data, so each adapter's README can print it and a test can walk
 * every row; the key comes from the network, so lookups see only the table's own rows
 * (`__proto__` or `constructor` from a hostile server is just an unknown answer).
 */
import { type ErrorCode, type KeyportError, type KeyportErrorOptions, keyportError } from './errors.js';

export interface ErrorMapping {
  readonly code: ErrorCode;
  /** Overrides the code's default retryability. */
  readonly retryable?: boolean;
  /** For 'Unsupported' rows: the capability the answer refuses (default 'operation'). */
  readonly capability?: string;
}

export type ErrorTable = Readonly<Record<string, ErrorMapping>>;

/** The table's row for `key`, or undefined (inherited properties are never rows). */
export function errorMapping(table: ErrorTable, key: string | number | undefined): ErrorMapping | undefined {
  if (key === undefined) return undefined;
  const k = String(key);
  return Object.hasOwn(table, k) ? table[k] : undefined;
}

/**
 * The KeyportError for the provider's answer `key`, or undefined when the table has no row for
 * it. `message` is written by the driver (never the provider's own text, which may echo inputs).
 */
export function errorFromTable(
  table: ErrorTable,
  key: string | number | undefined,
  message: string,
  options: KeyportErrorOptions = {},
): KeyportError | undefined {
  const row = errorMapping(table, key);
  if (row === undefined) return undefined;
  return keyportError(row.code, message, {
    ...options,
    ...(row.retryable !== undefined ? { retryable: row.retryable } : {}),
    ...(row.capability !== undefined ? { capability: row.capability } : {}),
  });
}

/** Socket-level failures: the endpoint could not be reached or dropped the connection. */
const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * Failures to make a connection at all (refused, no DNS answer, the connect timed out): a request
 * that fails so never left this process. A dropped (ECONNRESET, EPIPE) or stalled (ETIMEDOUT)
 * connection is not here: its request may have reached the provider. ENETUNREACH and
 * EHOSTUNREACH are not either: an established connection can report them too.
 */
const UNSENT_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * Certificate checks that failed (Node's and OpenSSL's codes): the endpoint answered, but its
 * certificate is not trusted with this trust configuration (a missing CA bundle, a self-signed or
 * expired certificate, another host's name). Retrying cannot help.
 */
const TLS_ERROR_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_REVOKED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** A code of `codes` on the error or its causes (Node's fetch and some SDKs wrap the socket's). */
function codeInChain(error: unknown, codes: ReadonlySet<string>): string | undefined {
  let e: unknown = error;
  for (let depth = 0; depth < 4 && typeof e === 'object' && e !== null; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && codes.has(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * The socket error code of a failure to reach an endpoint (on the error or its cause, as Node's
 * fetch wraps it), or undefined. Every network driver maps it to Unavailable.
 */
export function networkErrorCode(error: unknown): string | undefined {
  return codeInChain(error, NETWORK_ERROR_CODES);
}

/**
 * The socket error code of a request that never left this process because no connection was
 * made (on the error or its causes: a driver's KeyportError keeps the socket error as its
 * cause), or undefined. Core retries such a failure even for operations that must not run twice.
 */
export function unsentRequestCode(error: unknown): string | undefined {
  return codeInChain(error, UNSENT_ERROR_CODES);
}

/**
 * The code of a refused TLS certificate (on the error or its causes), or undefined. Every network
 * driver maps it to Unavailable that is not retryable, naming the code: a wrong CA bundle must
 * fail at once and say so, not be retried as if the endpoint were down.
 */
export function tlsErrorCode(error: unknown): string | undefined {
  return codeInChain(error, TLS_ERROR_CODES);
}

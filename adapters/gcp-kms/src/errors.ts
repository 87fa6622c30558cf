/**
 * Cloud KMS errors → KeyportError. The client raises a GoogleError whose `code` is a gRPC status
 * code, over gRPC and over REST alike (the REST fallback turns the JSON error's `status`, or the
 * HTTP status, into the gRPC code). A bare HTTP status is mapped too, for errors raised before
 * the fallback decodes a body. The table is the README's "Error mapping" section.
 */
import { type ErrorCode, KeyportError, UnsupportedError } from '@keyport/core';

/** gRPC status codes (google.rpc.Code). */
export const GRPC = {
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** gRPC status → keyport code. INVALID_ARGUMENT is refined by the operation (see mapGcpError). */
export const GRPC_CODE_MAP: Readonly<Record<number, ErrorCode>> = {
  [GRPC.CANCELLED]: 'Aborted',
  [GRPC.UNKNOWN]: 'Internal',
  [GRPC.INVALID_ARGUMENT]: 'InvalidArgument',
  [GRPC.DEADLINE_EXCEEDED]: 'Timeout',
  [GRPC.NOT_FOUND]: 'NotFound',
  [GRPC.ALREADY_EXISTS]: 'AlreadyExists',
  [GRPC.PERMISSION_DENIED]: 'AccessDenied',
  [GRPC.RESOURCE_EXHAUSTED]: 'Throttled',
  [GRPC.FAILED_PRECONDITION]: 'KeyStateConflict',
  [GRPC.ABORTED]: 'Unavailable',
  [GRPC.OUT_OF_RANGE]: 'InvalidArgument',
  [GRPC.UNIMPLEMENTED]: 'Unsupported',
  [GRPC.INTERNAL]: 'Unavailable',
  [GRPC.UNAVAILABLE]: 'Unavailable',
  [GRPC.DATA_LOSS]: 'Integrity',
  [GRPC.UNAUTHENTICATED]: 'AccessDenied',
};

/** HTTP status → keyport code, for REST errors that carry no gRPC status. */
export const HTTP_CODE_MAP: Readonly<Record<number, ErrorCode>> = {
  400: 'InvalidArgument',
  401: 'AccessDenied',
  403: 'AccessDenied',
  404: 'NotFound',
  409: 'AlreadyExists',
  429: 'Throttled',
  499: 'Aborted',
  500: 'Unavailable',
  501: 'Unsupported',
  503: 'Unavailable',
  504: 'Timeout',
};

/** What the failed call was doing, so an ambiguous status can be named precisely. */
export type GcpOperation = 'decrypt' | 'verify' | 'import' | 'other';

interface GoogleLikeError {
  code?: unknown;
  message?: unknown;
  details?: unknown;
  metadata?: { get?: (key: string) => unknown[] } | undefined;
}

function requestIdOf(error: GoogleLikeError): string | undefined {
  try {
    const value = error.metadata?.get?.('x-request-id')?.[0] ?? error.metadata?.get?.('request-id')?.[0];
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

function statusOf(error: GoogleLikeError): { grpc?: number; http?: number } {
  const code = error.code;
  if (typeof code === 'number') return code >= 100 ? { http: code } : { grpc: code };
  if (typeof code === 'string' && /^\d+$/.test(code)) return statusOf({ code: Number(code) });
  return {};
}

/** A checksum refused by the service: the bytes were corrupted between keyport and Cloud KMS. */
function mentionsChecksum(error: GoogleLikeError): boolean {
  const text = `${String(error.message ?? '')} ${String(error.details ?? '')}`.toLowerCase();
  return text.includes('crc32c') || text.includes('checksum');
}

const MESSAGES: Readonly<Record<ErrorCode, string>> = {
  NotFound: 'the Cloud KMS resource does not exist',
  AlreadyExists: 'the Cloud KMS resource already exists',
  AccessDenied: 'Cloud KMS refused the caller (permission denied or unauthenticated)',
  InvalidArgument: 'Cloud KMS rejected the request as invalid',
  InvalidCiphertext: 'the ciphertext does not open under this key and context',
  KeyStateConflict: 'the key version is not in a state that allows this operation',
  Unsupported: 'Cloud KMS (or this endpoint) does not implement the operation',
  Throttled: 'Cloud KMS quota exceeded',
  Unavailable: 'Cloud KMS is unavailable',
  Timeout: 'the Cloud KMS call exceeded its deadline',
  Aborted: 'the Cloud KMS call was cancelled',
  Integrity: 'a CRC32C integrity check failed between keyport and Cloud KMS',
  Internal: 'unexpected Cloud KMS failure (see cause)',
};

/**
 * Maps a raw client error; undefined when it is not a Google API error. The service's own message
 * stays on `cause` (it names resources, never plaintext or AAD values); keyport's message is fixed text.
 */
export function mapGcpError(
  error: unknown,
  op: GcpOperation = 'other',
  details: { keyUri?: string; provider?: string } = {},
): KeyportError | undefined {
  if (error instanceof KeyportError) return error;
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as GoogleLikeError;
  const { grpc, http } = statusOf(e);
  let code: ErrorCode | undefined =
    grpc !== undefined ? GRPC_CODE_MAP[grpc] : http !== undefined ? HTTP_CODE_MAP[http] : undefined;
  if (code === undefined) return undefined;
  if (code === 'InvalidArgument' && mentionsChecksum(e)) code = 'Integrity';
  else if (code === 'InvalidArgument' && op === 'decrypt') code = 'InvalidCiphertext';
  const options = { ...details, requestId: requestIdOf(e), cause: error };
  if (code === 'Unsupported') return new UnsupportedError('operation', MESSAGES.Unsupported, options);
  return new KeyportError(code, MESSAGES[code], options);
}

/** A failed integrity check on our side of the wire. */
export function integrityError(what: string): KeyportError {
  return new KeyportError('Integrity', `CRC32C check failed: ${what}`, { retryable: true });
}

/**
 * Cloud KMS errors → KeyportError. The client raises a GoogleError whose `code` is a gRPC status,
 * over gRPC and over REST alike (the REST fallback turns the JSON error's `status`, or the HTTP
 * status, into the gRPC code); a bare HTTP status is mapped too, for errors raised before the
 * fallback decodes a body, and a socket failure is Unavailable. The table is the README's
 * "Error mapping" section.
 */
import type { ErrorTable } from '@keyport/core';
import { errorFromTable, errorMapping, KeyportError, networkErrorCode, tlsErrorCode } from '@keyport/core';
import { answerTooLarge } from './rest.js';

/** google.rpc.Code names by number (0 = OK). */
export const GRPC_STATUS_NAMES: readonly string[] = (
  'OK CANCELLED UNKNOWN INVALID_ARGUMENT DEADLINE_EXCEEDED NOT_FOUND ALREADY_EXISTS PERMISSION_DENIED ' +
  'RESOURCE_EXHAUSTED FAILED_PRECONDITION ABORTED OUT_OF_RANGE UNIMPLEMENTED INTERNAL UNAVAILABLE DATA_LOSS UNAUTHENTICATED'
).split(' ');

/** A concurrent IAM policy write (etag mismatch): grants.ts re-reads the policy. */
export const ABORTED = GRPC_STATUS_NAMES.indexOf('ABORTED');

/**
 * What Cloud KMS answers → keyport code: gRPC statuses by name, HTTP statuses by number, and the
 * refinements of INVALID_ARGUMENT / HTTP 400 by what the call was doing.
 */
export const GCP_KMS_ERROR_TABLE: ErrorTable = {
  CANCELLED: { code: 'Aborted' },
  UNKNOWN: { code: 'Internal' },
  INVALID_ARGUMENT: { code: 'InvalidArgument' },
  'INVALID_ARGUMENT from Decrypt': { code: 'InvalidCiphertext' },
  'INVALID_ARGUMENT naming a checksum': { code: 'Integrity' },
  DEADLINE_EXCEEDED: { code: 'Timeout' },
  NOT_FOUND: { code: 'NotFound' },
  ALREADY_EXISTS: { code: 'AlreadyExists' },
  PERMISSION_DENIED: { code: 'AccessDenied' },
  RESOURCE_EXHAUSTED: { code: 'Throttled' },
  // grpc-js's status for a message over the size limit (an answer over the client's, or a request
  // over the server's): the same message again would be refused again.
  'RESOURCE_EXHAUSTED for a message over the size limit': { code: 'Internal', retryable: false },
  FAILED_PRECONDITION: { code: 'KeyStateConflict' },
  ABORTED: { code: 'Unavailable' },
  OUT_OF_RANGE: { code: 'InvalidArgument' },
  UNIMPLEMENTED: { code: 'Unsupported', capability: 'operation' },
  INTERNAL: { code: 'Unavailable' },
  UNAVAILABLE: { code: 'Unavailable' },
  DATA_LOSS: { code: 'Integrity' },
  UNAUTHENTICATED: { code: 'AccessDenied' },
  400: { code: 'InvalidArgument' },
  401: { code: 'AccessDenied' },
  403: { code: 'AccessDenied' },
  404: { code: 'NotFound' },
  409: { code: 'AlreadyExists' },
  429: { code: 'Throttled' },
  499: { code: 'Aborted' },
  500: { code: 'Unavailable' },
  501: { code: 'Unsupported', capability: 'operation' },
  503: { code: 'Unavailable' },
  504: { code: 'Timeout' },
  'socket error': { code: 'Unavailable' },
  // The endpoint's certificate refused (REST, where the reason is on a cause; gRPC reports only
  // UNAVAILABLE with a message).
  'TLS certificate refused': { code: 'Unavailable', retryable: false },
  // A successful answer the client could not decode (gRPC: a message protobuf cannot parse; REST:
  // a 2xx body that is not JSON, empty, or with fields of the wrong types): the service (or what
  // stands in for it) answered, wrongly; it is no transient failure, as for the AWS and Key Vault
  // drivers. An error status with an undecodable body keeps its status's row.
  'answer that could not be decoded': { code: 'Internal', retryable: false },
};

/** What the failed call was doing, so an ambiguous status can be named precisely. */
export type GcpOperation = 'decrypt' | 'other';

type Metadata = { get?: (key: string) => unknown[] };
type GoogleLikeError = {
  code?: unknown;
  message?: unknown;
  details?: unknown;
  metadata?: Metadata | undefined;
};

const UNDECODED = 'answer that could not be decoded';

/** The table key of an error: its gRPC status name, HTTP status, 'TLS certificate refused' or 'socket error'. */
function tableKey(error: GoogleLikeError, op: GcpOperation): string | undefined {
  // First: over REST the client wraps the refused certificate (on a cause) in an UNAVAILABLE.
  if (tlsErrorCode(error) !== undefined) return 'TLS certificate refused';
  const raw = error.code;
  const code = typeof raw === 'string' && /^\d{1,3}$/.test(raw) ? Number(raw) : raw;
  let key: string | undefined;
  if (typeof code === 'number') key = code >= 100 ? String(code) : GRPC_STATUS_NAMES[code];
  else if (networkErrorCode(error) !== undefined) return 'socket error';
  const text = `${String(error.message ?? '')} ${String(error.details ?? '')}`.toLowerCase();
  if (key === 'RESOURCE_EXHAUSTED' && text.includes('message larger than max'))
    return 'RESOURCE_EXHAUSTED for a message over the size limit';
  // grpc-js's own status for an answer it could not deserialize (no status the service sent).
  if (key === 'INTERNAL' && text.includes('response message parsing error')) return UNDECODED;
  if (errorMapping(GCP_KMS_ERROR_TABLE, key)?.code !== 'InvalidArgument') return key;
  // A checksum the service refused means the bytes were corrupted on the way.
  if (text.includes('crc32c') || text.includes('checksum')) return 'INVALID_ARGUMENT naming a checksum';
  return op === 'decrypt' ? 'INVALID_ARGUMENT from Decrypt' : key;
}

/** The request id the service sent in the error's metadata, as an error option. */
function requestIdOf(error: GoogleLikeError): { requestId?: string } {
  try {
    const value = error.metadata?.get?.('x-request-id')?.[0] ?? error.metadata?.get?.('request-id')?.[0];
    return typeof value === 'string' ? { requestId: value } : {};
  } catch {
    return {};
  }
}

type Details = { keyUri?: string; provider?: string };

/** gax's error for a non-2xx REST answer whose body is not a JSON error object (it quotes the body). */
const UNDECODABLE =
  /^Error response from RPC \w+(?: with status \d{3})? could not be decoded: (the response body[^:]*)/;

/**
 * What was wrong with a REST answer the client could not decode, or undefined. Those errors
 * carry the answer's text: V8's JSON SyntaxError quotes a snippet of the body, gax's error for an
 * undecodable error answer quotes up to 1 KiB of it (and keeps all of it on a hidden property),
 * and proto3-json-serializer's quotes a field's value (`field plaintext ... cannot contain value
 * ...`). The body may be a Decrypt answer's plaintext, so none of them is kept on the error.
 */
function malformedAnswer(error: unknown): string | undefined {
  let e: unknown = error;
  for (let depth = 0; depth < 8 && typeof e === 'object' && e !== null; depth++) {
    if (e instanceof SyntaxError) return 'the response body is not JSON';
    const message = String((e as { message?: unknown }).message ?? '');
    const undecodable = UNDECODABLE.exec(message);
    if (undecodable) return undecodable[1];
    if (/^\w*(?:FromProto3JSON|Proto3JSON)\w*:/.test(message))
      return "the response's fields do not have the API's types";
    // gax's errors for a successful answer with an empty body, or one its decoder made nothing of.
    if (/^Received null response from RPC \w+$/.test(message)) return 'the response body is empty';
    if (/^Received null or malformed response from JSON serializer/.test(message))
      return 'the response body is not a message';
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Maps a raw client error; undefined when it is not a Google API error. The service's own message
 * stays on `cause` (it names resources, never plaintext or AAD values); keyport's is fixed text.
 */
export function mapGcpError(error: unknown, op: GcpOperation = 'other', details: Details = {}) {
  if (error instanceof KeyportError) return error;
  if (typeof error !== 'object' || error === null) return undefined;
  // A REST answer over the size limit reaches here wrapped by gaxios and then by gax (as an
  // UNAVAILABLE, which would be retried): keyport's own error is what it is.
  const tooLarge = answerTooLarge(error);
  if (tooLarge !== undefined) return tooLarge.withDetails(details);
  const e = error as GoogleLikeError;
  const malformed = malformedAnswer(error);
  const status = (error as { httpStatusCode?: unknown }).httpStatusCode;
  // gax sets the status on an error answer only: an undecodable body without one was a 2xx's.
  const key =
    malformed !== undefined && (typeof status !== 'number' || status < 300) ? UNDECODED : tableKey(e, op);
  const answer = key !== undefined && /^\d+$/.test(key) ? `HTTP ${key}` : key;
  if (malformed !== undefined) {
    // The status, the request id and what was wrong are kept; the client's error (the cause) is
    // not, since its text quotes the answer.
    const http = typeof status === 'number' ? ` HTTP ${status}` : '';
    const why = `Cloud KMS sent an${http} answer that could not be decoded (${malformed}); its body is not kept`;
    const options = { ...details, ...requestIdOf(e) };
    const message = `Cloud KMS call failed: ${key === UNDECODED ? '' : `${answer}: `}${why}`;
    return (
      errorFromTable(GCP_KMS_ERROR_TABLE, key, message, options) ??
      new KeyportError('Internal', message, { ...options, retryable: false })
    );
  }
  const options = { ...details, ...requestIdOf(e), cause: error };
  return errorFromTable(GCP_KMS_ERROR_TABLE, key, `Cloud KMS call failed: ${answer}`, options);
}

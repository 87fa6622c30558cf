/**
 * AWS KMS errors -> KeyportError codes, as one lookup table (the README prints the same table and
 * `test/errors.test.ts` checks every row). Messages are written here from the exception name only:
 * AWS messages can echo request values, so they stay in `cause`, never in our message.
 */
import {
  type ErrorTable,
  errorFromTable,
  KeyportError,
  keyportError,
  networkErrorCode,
  PageTokens,
  quote,
  tlsErrorCode,
} from '@keyport/core';

export const PROVIDER_NAME = 'aws-kms';

/** Every exception name the KMS API (and the AWS protocol layer in front of it) can answer with. */
export const AWS_ERROR_TABLE: ErrorTable = {
  // keys and names
  NotFoundException: { code: 'NotFound' },
  AlreadyExistsException: { code: 'AlreadyExists' },
  // key state
  DisabledException: { code: 'KeyStateConflict' },
  KMSInvalidStateException: { code: 'KeyStateConflict' },
  ConflictException: { code: 'KeyStateConflict' },
  KeyUnavailableException: { code: 'Unavailable' },
  // ciphertexts, signatures, MACs
  InvalidCiphertextException: { code: 'InvalidCiphertext' },
  IncorrectKeyException: { code: 'InvalidCiphertext' },
  KMSInvalidSignatureException: { code: 'Integrity' },
  KMSInvalidMacException: { code: 'Integrity' },
  // authorisation and credentials
  AccessDeniedException: { code: 'AccessDenied' },
  UnrecognizedClientException: { code: 'AccessDenied' },
  InvalidSignatureException: { code: 'AccessDenied' },
  IncompleteSignature: { code: 'AccessDenied' },
  InvalidClientTokenId: { code: 'AccessDenied' },
  MissingAuthenticationToken: { code: 'AccessDenied' },
  ExpiredTokenException: { code: 'AccessDenied' },
  // request shape
  ValidationException: { code: 'InvalidArgument' },
  SerializationException: { code: 'InvalidArgument' },
  MissingParameterException: { code: 'InvalidArgument' },
  InvalidParameterValue: { code: 'InvalidArgument' },
  InvalidParameterCombination: { code: 'InvalidArgument' },
  InvalidKeyUsageException: { code: 'InvalidArgument' },
  InvalidArnException: { code: 'InvalidArgument' },
  InvalidAliasNameException: { code: 'InvalidArgument' },
  InvalidMarkerException: { code: 'InvalidArgument' },
  InvalidGrantIdException: { code: 'InvalidArgument' },
  InvalidGrantTokenException: { code: 'InvalidArgument' },
  InvalidImportTokenException: { code: 'InvalidArgument' },
  ExpiredImportTokenException: { code: 'InvalidArgument' },
  IncorrectKeyMaterialException: { code: 'InvalidArgument' },
  IncorrectTrustAnchorException: { code: 'InvalidArgument' },
  MalformedPolicyDocumentException: { code: 'InvalidArgument' },
  TagException: { code: 'InvalidArgument' },
  // keyport never sends DryRun, so this answer means something is wrong on our side
  DryRunOperationException: { code: 'Internal' },
  // "not valid for this operation" (e.g. importing into a key with AWS-made material): a request
  // problem, not a missing capability — 'Unsupported' is kept for operations an endpoint lacks
  UnsupportedOperationException: { code: 'InvalidArgument' },
  // load and availability
  ThrottlingException: { code: 'Throttled' },
  // KMS also uses LimitExceeded for quotas; core's bounded retries keep that from looping
  LimitExceededException: { code: 'Throttled' },
  TooManyRequestsException: { code: 'Throttled' },
  RequestLimitExceeded: { code: 'Throttled' },
  DependencyTimeoutException: { code: 'Unavailable' },
  KMSInternalException: { code: 'Unavailable' },
  InternalFailure: { code: 'Unavailable' },
  InternalFailureException: { code: 'Unavailable' },
  ServiceUnavailable: { code: 'Unavailable' },
  ServiceUnavailableException: { code: 'Unavailable' },
  // custom key stores (CloudHSM and external key stores)
  CustomKeyStoreNotFoundException: { code: 'NotFound' },
  CustomKeyStoreInvalidStateException: { code: 'KeyStateConflict' },
  CustomKeyStoreHasCMKsException: { code: 'KeyStateConflict' },
  CustomKeyStoreNameInUseException: { code: 'AlreadyExists' },
  CloudHsmClusterNotFoundException: { code: 'NotFound' },
  CloudHsmClusterNotActiveException: { code: 'KeyStateConflict' },
  CloudHsmClusterInUseException: { code: 'KeyStateConflict' },
  CloudHsmClusterInvalidConfigurationException: { code: 'InvalidArgument' },
  CloudHsmClusterNotRelatedException: { code: 'InvalidArgument' },
  XksKeyNotFoundException: { code: 'NotFound' },
  XksKeyAlreadyInUseException: { code: 'AlreadyExists' },
  XksKeyInvalidConfigurationException: { code: 'InvalidArgument' },
  XksProxyIncorrectAuthenticationCredentialException: { code: 'AccessDenied' },
  XksProxyInvalidConfigurationException: { code: 'InvalidArgument' },
  XksProxyInvalidResponseException: { code: 'Unavailable' },
  XksProxyUriEndpointInUseException: { code: 'AlreadyExists' },
  XksProxyUriInUseException: { code: 'AlreadyExists' },
  XksProxyUriUnreachableException: { code: 'Unavailable' },
  XksProxyVpcEndpointServiceInUseException: { code: 'AlreadyExists' },
  XksProxyVpcEndpointServiceInvalidConfigurationException: { code: 'InvalidArgument' },
  XksProxyVpcEndpointServiceNotFoundException: { code: 'NotFound' },
  // raised by the SDK itself
  TimeoutError: { code: 'Timeout' },
  AbortError: { code: 'Aborted', retryable: false },
};

/**
 * Whether an exception name from the wire reads as one (`NotFoundException`, `InternalFailure`):
 * a CamelCase word of at most 100 characters. The endpoint chooses the name (`__type`, or the
 * `x-amzn-ErrorType` header); one that echoes a request header there would otherwise put a
 * session token (long, with `/+=`), an access key id (capitals and digits only) or a signature
 * (lower-case hex) in the message and the cause of the error, and so in every log printing it.
 */
function isExceptionName(name: string): boolean {
  return /^[A-Za-z][A-Za-z0-9_.:#-]{0,99}$/.test(name) && /[a-z]/.test(name) && /[A-Z]/.test(name);
}

/** The SDK error without the name the wire gave it (its message is the body's, which core masks). */
function unnamed(error: { message?: unknown }): Error {
  const copy = new Error(typeof error.message === 'string' ? error.message : '');
  copy.name = 'UnnamedAwsKmsException';
  return copy;
}

/**
 * Whether the SDK failed to read the answer's body (it attaches the raw `$response` to what its
 * parser threw and appends a hint to the message); AWS's own exceptions carry `$fault` instead.
 */
function isUnreadableAnswer(error: object): boolean {
  return Object.hasOwn(error, '$response') && !Object.hasOwn(error, '$fault');
}

/**
 * The parser's error without its message: V8's JSON.parse quotes the body around the fault (ten
 * characters each side, all of a body under 21), and the body of a Decrypt or GenerateDataKey
 * answer is key material: `Unexpected token 'A', ..."laintext":AQgPFh0kKz"...` printed 60 bits of
 * a data key in every log of the error. The position, name and stack frames are kept; the body
 * (`$response`, `$responseBodyText`) was never kept (core reduces causes).
 */
function withoutBody(error: { name?: unknown; message?: unknown; stack?: unknown }): Error {
  const name = typeof error.name === 'string' && isExceptionName(error.name) ? error.name : 'Error';
  const at = typeof error.message === 'string' ? /\bat position (\d+)/.exec(error.message)?.[1] : undefined;
  const copy = new Error(
    `the answer's body could not be read${at !== undefined ? ` (at position ${at})` : ''}; the parser's message is withheld, as it quotes the body`,
  );
  copy.name = name;
  const frames = String(error.stack ?? '')
    .split('\n')
    .filter((line) => /^\s+at /.test(line));
  copy.stack = [`${name}: ${copy.message}`, ...frames].join('\n');
  return copy;
}

/**
 * Maps anything a KMS call can throw. KeyportErrors pass through; unknown non-SDK values return
 * undefined so core's default (Internal) applies.
 */
export function mapAwsError(error: unknown): KeyportError | undefined {
  if (error instanceof KeyportError) return error;
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as {
    name?: unknown;
    $metadata?: Record<string, unknown>;
    $retryable?: { throttling?: unknown };
  };
  const name = typeof e.name === 'string' ? e.name : '';
  const shown = name === '' || isExceptionName(name);
  const { requestId: id, httpStatusCode: status } = e.$metadata ?? {};
  const unreadable = isUnreadableAnswer(error);
  const base = {
    provider: PROVIDER_NAME,
    requestId: typeof id === 'string' && id !== '' ? id : undefined,
    cause: unreadable ? withoutBody(error) : shown ? error : unnamed(error),
  };
  const tls = tlsErrorCode(error);
  if (tls !== undefined)
    return keyportError('Unavailable', `the AWS KMS endpoint's TLS certificate was refused (${tls})`, {
      ...base,
      retryable: false,
    });
  // first: the SDK names a dropped connection TimeoutError ("socket hang up") though nothing timed out
  const network = networkErrorCode(error);
  if (network !== undefined)
    return keyportError('Unavailable', `AWS KMS endpoint unreachable (${network})`, base);
  const mapped = errorFromTable(AWS_ERROR_TABLE, name, `AWS KMS answered ${name}`, base);
  if (mapped !== undefined) return mapped;
  // A body that is not KMS JSON: 501 is "operation not implemented" (emulators answer so for
  // APIs they lack); other server errors are transient as far as we can tell.
  if (status === 501)
    return keyportError('Unsupported', 'the AWS KMS endpoint does not implement this operation', base);
  if (typeof status === 'number' && status >= 500)
    return keyportError('Unavailable', `AWS KMS answered HTTP ${status}`, base);
  if (e.$retryable?.throttling === true)
    return keyportError('Throttled', 'AWS KMS throttled the request', base);
  if (unreadable && typeof status === 'number')
    return keyportError('Internal', `AWS KMS answered HTTP ${status} with a body that is not KMS JSON`, base);
  if (typeof status === 'number')
    return keyportError(
      'Internal',
      `unexpected AWS KMS answer ${name !== '' && shown ? quote(name) : `HTTP ${status}`}`,
      base,
    );
  return undefined;
}

/** A field AWS must have answered with; its absence is a protocol failure, not the caller's. */
export function answered<T>(value: T | undefined, what: string): T {
  if (value === undefined)
    throw keyportError('Internal', `AWS KMS answered without ${what}`, { provider: PROVIDER_NAME });
  return value;
}

/**
 * A blob field AWS must have answered with, as bytes of at least `min` bytes. The SDK decodes a
 * base64 string and passes any other JSON value through as it is: a `Plaintext` of `[1,2,3]` was
 * read as a 3-byte plaintext, `{}` failed untyped deep in the driver, and a `CiphertextBlob` that
 * is an array, object or number was handed over as a ciphertext. AWS answers no empty blob (a
 * plaintext, ciphertext, signature or key is at least a byte), so `""` is refused as well.
 */
export function answeredBytes(value: unknown, what: string, min = 1): Uint8Array {
  const bytes = answered(value === null ? undefined : value, what);
  if (!(bytes instanceof Uint8Array) || bytes.length < min)
    throw keyportError(
      'Internal',
      `AWS KMS answered with ${what} that is ${bytes instanceof Uint8Array ? `${bytes.length} bytes long` : 'not base64 bytes'}`,
      { provider: PROVIDER_NAME, retryable: false },
    );
  return bytes;
}

/** One listing's page markers: a marker AWS KMS (or an endpoint posing as it) gives again ends it. */
export function pageMarkers(): PageTokens {
  return new PageTokens(() =>
    keyportError('Internal', 'AWS KMS answered a page marker it had already given (an endless listing)', {
      provider: PROVIDER_NAME,
    }),
  );
}

/**
 * The marker of the next page of a listing, or undefined after the last. A truncated page must
 * name a marker this listing has not followed: an endpoint answering an earlier one again would
 * have the listing loop (and, for tags, grow) forever; and one answering `Truncated` with no
 * marker would end it early, the rest of the keys, grants or tags silently missing. So would a
 * `Truncated` that is no boolean (`"true"`, `1`: the SDK passes the JSON value through as it is),
 * read as "not truncated": it is refused instead.
 */
export function nextMarker(
  page: { readonly Truncated?: boolean | undefined; readonly NextMarker?: string | undefined },
  markers: PageTokens,
): string | undefined {
  const truncated: unknown = page.Truncated;
  if (truncated !== undefined && typeof truncated !== 'boolean')
    throw keyportError('Internal', 'AWS KMS answered a page whose Truncated flag is not a boolean', {
      provider: PROVIDER_NAME,
    });
  if (truncated !== true) return undefined;
  if (typeof page.NextMarker !== 'string' || page.NextMarker === '')
    throw keyportError('Internal', 'AWS KMS answered a truncated page without the marker of the next one', {
      provider: PROVIDER_NAME,
    });
  return markers.next(page.NextMarker);
}

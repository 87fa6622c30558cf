/**
 * One error type for every provider. `code` is stable and append-only; `cause` keeps a reduced
 * copy of the provider's original error (its class, code, message and request id, never the
 * request, response or headers it carried). Messages are written by keyport: no plaintext, key
 * bytes or context values may ever appear in them, and any name taken from input is `quote`d.
 */
export const ERROR_CODES = [
  'NotFound',
  'AlreadyExists',
  'AccessDenied',
  'InvalidArgument',
  'InvalidCiphertext',
  'KeyStateConflict',
  'Unsupported',
  'Throttled',
  'Unavailable',
  'Timeout',
  'Aborted',
  'Integrity',
  'Internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Longest quoted input in a message; longer strings are cut with an ellipsis. */
export const MAX_QUOTED_CHARS = 80;
/** Longest message, key URI or request id an error carries. */
const MAX_FIELD_CHARS = 2048;

/**
 * Escapes what a terminal or a log line would act on: C0 and C1 control characters, DEL,
 * line and paragraph separators, bidirectional controls (U+061C, U+200E/F, U+202A-E,
 * U+2066-9: text could reorder the rest of its line, show `exe.txt` for `txt.exe`) and lone
 * surrogates become `\uXXXX`.
 */
export function escapeControl(text: string): string {
  return text.replace(
    // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
    /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]|\p{Cs}/gu,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * An input string as it may appear in an error message: in double quotes, control characters
 * escaped, at most `max` characters (then `…` and the full length). Non-strings are described
 * by their type, never printed.
 */
export function quote(value: unknown, max: number = MAX_QUOTED_CHARS): string {
  if (typeof value !== 'string') return `(${describeType(value)})`;
  const cut = value.length > max ? `${value.slice(0, max)}…` : value;
  const escaped = escapeControl(cut.replace(/["\\]/g, (c) => `\\${c}`));
  return value.length > max ? `"${escaped}" (${value.length} chars)` : `"${escaped}"`;
}

/** A short, safe description of a value's type: `number NaN`, `Map`, `array`, `symbol`... */
export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  switch (typeof value) {
    case 'number':
      return Number.isFinite(value) ? 'number' : `number ${String(value)}`;
    case 'object': {
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto === null || proto === Object.prototype) return 'object';
      const name = (proto as { constructor?: { name?: unknown } }).constructor?.name;
      return typeof name === 'string' && /^[A-Za-z_$][\w$]{0,40}$/.test(name) ? name : 'object';
    }
    default:
      return typeof value;
  }
}

/**
 * Secrets an SDK may have put into an error message (a signed URL, an echoed header): the value
 * after the name is masked. Messages are otherwise kept: they are what a user debugs with.
 */
const SECRET_IN_TEXT =
  /\b(authorization|proxy-authorization|x-amz-security-token|x-amz-signature|x-amz-credential|credential|x-goog-api-key|x-vault-token|access_token|refresh_token|client_secret|password|passphrase|pin-value|sig|signature|token|secret)(["']?\s*[:=]\s*["']?)[^\s&;,"'}]+/gi;
const BEARER = /\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi;
/**
 * Credentials recognisable by their shape alone, wherever they stand (an endpoint or proxy that
 * echoes a request header into its error text does not name it): Vault and OpenBao tokens
 * (service, batch, recovery; `hv`-prefixed since Vault 1.10), JWTs (Entra ID and Kubernetes
 * service-account tokens), Google OAuth access tokens and API keys, AWS access key ids.
 */
const CREDENTIAL_SHAPED =
  /\b(?:(?:hv[sbr]|[sbr])\.[A-Za-z0-9_-]{20,}|eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*|ya29\.[A-Za-z0-9_.-]{10,}|AIza[0-9A-Za-z_-]{35}|(?:AKIA|ASIA)[A-Z0-9]{16}\b)/g;

/** `text` with named secrets (`token=…`, `Authorization: Bearer …`) and credential-shaped strings masked. */
export function redactSecrets(text: string): string {
  return text
    .replace(BEARER, (_m, scheme: string) => `${scheme} <redacted>`)
    .replace(SECRET_IN_TEXT, (_m, name: string, sep: string) => `${name}${sep}<redacted>`)
    .replace(CREDENTIAL_SHAPED, '<redacted>');
}

/** A message, key URI or request id made safe to print: control characters escaped, length capped. */
function clean(text: string): string {
  const capped = text.length > MAX_FIELD_CHARS ? `${text.slice(0, MAX_FIELD_CHARS)}…` : text;
  return escapeControl(capped);
}

function cleanOptional(text: string | undefined): string | undefined {
  return typeof text === 'string' ? clean(text) : undefined;
}

/** Codes worth another attempt by default: the provider may answer differently soon. */
const RETRYABLE_BY_DEFAULT: ReadonlySet<ErrorCode> = new Set(['Throttled', 'Unavailable', 'Timeout']);

export interface KeyportErrorOptions {
  provider?: string | undefined;
  keyUri?: string | undefined;
  requestId?: string | undefined;
  retryable?: boolean | undefined;
  /** Server-suggested delay before the next attempt (e.g. Retry-After), in ms. */
  retryAfterMs?: number | undefined;
  cause?: unknown;
  /** For code 'Unsupported': the capability refused (see UnsupportedError); ignored otherwise. */
  capability?: string | undefined;
}

export class KeyportError extends Error {
  override readonly name: string = 'KeyportError';
  readonly code: ErrorCode;
  readonly provider: string | undefined;
  readonly keyUri: string | undefined;
  readonly requestId: string | undefined;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;

  constructor(code: ErrorCode, message: string, options: KeyportErrorOptions = {}) {
    super(
      clean(String(message)),
      options.cause === undefined ? undefined : { cause: reduceCause(options.cause) },
    );
    this.code = code;
    this.provider = cleanOptional(options.provider);
    this.keyUri = cleanOptional(options.keyUri);
    this.requestId = cleanOptional(options.requestId);
    this.retryable = options.retryable ?? RETRYABLE_BY_DEFAULT.has(code);
    this.retryAfterMs = options.retryAfterMs;
  }

  /** The same error with the provider and key filled in where the thrower did not know them. */
  withDetails(details: { provider?: string; keyUri?: string }): KeyportError {
    const provider = this.provider ?? cleanOptional(details.provider);
    const keyUri = this.keyUri ?? cleanOptional(details.keyUri);
    if (provider === this.provider && keyUri === this.keyUri) return this;
    // Every own property copied as it is (message, cause, and a subclass's own fields such as
    // AuditFailure's operationError), with no constructor called: a subclass may take other
    // arguments than (code, message, options), and rebuilding through it lost or garbled them.
    // Defined on a fresh object, so a property a copy made read-only (core's instance relabel)
    // is replaced, not redefined.
    const descriptors = Object.getOwnPropertyDescriptors(this);
    const copy = Object.create(Object.getPrototypeOf(this), {
      ...descriptors,
      // V8's `stack` is an accessor reading the original's hidden slot: copied as its text.
      stack: { value: this.stack, writable: true, enumerable: false, configurable: true },
      provider: { value: provider, writable: true, enumerable: true, configurable: true },
      keyUri: { value: keyUri, writable: true, enumerable: true, configurable: true },
    }) as KeyportError;
    return copy;
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      provider: this.provider,
      keyUri: this.keyUri,
      requestId: this.requestId,
      retryable: this.retryable,
    };
  }
}

/** A capability the provider (or this key spec) cannot offer. Never a silent no-op. */
export class UnsupportedError extends KeyportError {
  override readonly name: string = 'UnsupportedError';
  readonly capability: string;

  constructor(capability: string, message?: string, options: KeyportErrorOptions = {}) {
    super('Unsupported', message ?? `unsupported: ${capability}`, options);
    this.capability = capability;
  }
}

export function isKeyportError(value: unknown, code?: ErrorCode): value is KeyportError {
  return value instanceof KeyportError && (code === undefined || value.code === code);
}

/**
 * The one way a driver makes an error from a code (its error table, or a refusal it only sees at
 * call time, such as a key of a spec keyport does not model): code 'Unsupported' gives an
 * UnsupportedError naming `options.capability` (default 'operation'), so callers and the
 * conformance suite tell refusals apart the same way whichever driver made them.
 */
export function keyportError(
  code: ErrorCode,
  message: string,
  options: KeyportErrorOptions = {},
): KeyportError {
  if (code === 'Unsupported')
    return new UnsupportedError(options.capability ?? 'operation', message, options);
  return new KeyportError(code, message, options);
}

/** Throws InvalidArgument unless the condition holds. */
export function needs(condition: unknown, message: string, options?: KeyportErrorOptions): asserts condition {
  if (!condition) throw new KeyportError('InvalidArgument', message, options);
}

/** A KeyportError for a caught value: KeyportErrors pass through, anything else is Internal. */
export function toKeyportError(
  error: unknown,
  details: { provider?: string; keyUri?: string } = {},
): KeyportError {
  if (error instanceof KeyportError) return error.withDetails(details);
  if (error instanceof Error && error.name === 'AbortError') {
    return new KeyportError('Aborted', 'the operation was aborted', { ...details, cause: error });
  }
  return new KeyportError('Internal', 'unexpected provider failure (see cause)', {
    ...details,
    cause: error,
  });
}

// ------------------------------------------------------------------ reduced causes

/** Causes already reduced (by this module), passed through as they are. */
const REDUCED = new WeakSet<object>();
const MAX_CAUSE_DEPTH = 3;
const MAX_AGGREGATED = 16;
const MAX_STACK_FRAMES = 20;
/** Fields of a prototype that must be plain for an instance to be rebuilt on it. */
const PLAIN_FIELDS = ['name', 'message', 'stack', 'code', 'requestId', 'cause'];

/**
 * The prototype a reduced copy may keep: the original's, so `instanceof` still tells SDK error
 * classes apart, unless the chain up to Error.prototype defines accessors for the fields we copy
 * (DOMException's `message` needs internal slots) or a custom inspect / toJSON (which would read
 * fields we dropped). Then plain Error.prototype.
 */
function safePrototype(error: Error): object {
  let proto: unknown = Object.getPrototypeOf(error);
  const original = proto;
  for (let depth = 0; proto !== null && proto !== Error.prototype; depth++) {
    if (depth > 16 || typeof proto !== 'object') return Error.prototype;
    for (const field of PLAIN_FIELDS) {
      const d = Object.getOwnPropertyDescriptor(proto, field);
      if (d !== undefined && !('value' in d)) return Error.prototype;
    }
    if (Object.hasOwn(proto, 'toJSON') || Object.getOwnPropertySymbols(proto).length > 0)
      return Error.prototype;
    proto = Object.getPrototypeOf(proto);
  }
  return proto === Error.prototype ? (original as object) : Error.prototype;
}

/** Reads a property without letting a throwing getter escape. */
function read(value: unknown, key: string): unknown {
  try {
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
  } catch {
    return undefined;
  }
}

const REQUEST_ID_HEADERS = [
  'x-amzn-requestid',
  'x-amz-request-id',
  'x-ms-request-id',
  'x-request-id',
  'x-goog-request-id',
];

/** The provider's request id, wherever the common SDKs keep it (never the headers themselves). */
export function requestIdOf(error: unknown): string | undefined {
  const direct = [
    read(error, 'requestId'),
    read(error, 'request_id'),
    read(error, 'requestID'),
    read(read(error, '$metadata'), 'requestId'),
  ].find((v) => typeof v === 'string' && v.length > 0);
  if (typeof direct === 'string') return direct;
  for (const holder of [
    read(read(error, '$response'), 'headers'),
    read(read(error, 'response'), 'headers'),
  ]) {
    for (const name of REQUEST_ID_HEADERS) {
      let v: unknown;
      try {
        const get = read(holder, 'get');
        v =
          typeof get === 'function' ? (get as (n: string) => unknown).call(holder, name) : read(holder, name);
      } catch {
        v = undefined;
      }
      if (typeof v === 'string' && v.length > 0) return v;
    }
  }
  return undefined;
}

export function codeOf(error: unknown): string | number | undefined {
  for (const key of ['code', 'Code', 'errorCode']) {
    const v = read(error, key);
    if ((typeof v === 'string' && v.length > 0) || (typeof v === 'number' && Number.isFinite(v))) return v;
  }
  return undefined;
}

function cleanText(text: unknown, max = MAX_FIELD_CHARS): string {
  const s = typeof text === 'string' ? text : '';
  return escapeControl(redactSecrets(s.length > max ? `${s.slice(0, max)}…` : s));
}

function defineHidden(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, writable: true, configurable: true, enumerable: false });
}

/**
 * A provider error reduced to what is safe to keep: its class (prototype, name), code, message
 * (control characters escaped, secrets masked, capped) and request id, plus the stack frames.
 * Request and response objects, headers, credentials and configuration are dropped, so
 * `util.inspect`, JSON and `--verbose` show none of them. Aggregates and nested causes are
 * reduced the same way, a few levels deep. Idempotent; KeyportErrors pass through.
 */
export function reduceCause(cause: unknown, depth = 0): unknown {
  if (cause === undefined || cause === null) return cause;
  if (typeof cause === 'object' && (cause instanceof KeyportError || REDUCED.has(cause))) return cause;
  if (!(cause instanceof Error)) {
    if (typeof cause === 'string') return cleanText(cause);
    if (typeof cause !== 'object') return `(${describeType(cause)})`;
    const plain: Record<string, unknown> = {};
    const code = codeOf(cause);
    const message = read(cause, 'message');
    const requestId = requestIdOf(cause);
    if (code !== undefined) plain.code = typeof code === 'string' ? cleanText(code, 128) : code;
    if (typeof message === 'string') plain.message = cleanText(message);
    if (requestId !== undefined) plain.requestId = cleanText(requestId, 256);
    REDUCED.add(plain);
    return plain;
  }
  const name = cleanText(read(cause, 'name'), 128) || 'Error';
  const message = cleanText(read(cause, 'message'));
  let reduced: Error;
  if (cause instanceof AggregateError) {
    const inner = Array.isArray(read(cause, 'errors')) ? (cause.errors as unknown[]) : [];
    reduced = new AggregateError(
      depth < MAX_CAUSE_DEPTH ? inner.slice(0, MAX_AGGREGATED).map((e) => reduceCause(e, depth + 1)) : [],
      message,
    );
  } else {
    reduced = Object.create(safePrototype(cause)) as Error;
    defineHidden(reduced, 'message', message);
  }
  defineHidden(reduced, 'name', name);
  const frames = String(read(cause, 'stack') ?? '')
    .split('\n')
    .filter((line) => /^\s+at /.test(line))
    .slice(0, MAX_STACK_FRAMES)
    .map((line) => cleanText(line, 512));
  defineHidden(reduced, 'stack', [`${name}: ${message}`, ...frames].join('\n'));
  const code = codeOf(cause);
  if (code !== undefined)
    (reduced as Error & { code?: unknown }).code = typeof code === 'string' ? cleanText(code, 128) : code;
  const requestId = requestIdOf(cause);
  if (requestId !== undefined)
    (reduced as Error & { requestId?: unknown }).requestId = cleanText(requestId, 256);
  const inner = read(cause, 'cause');
  if (inner !== undefined && depth < MAX_CAUSE_DEPTH)
    defineHidden(reduced, 'cause', reduceCause(inner, depth + 1));
  REDUCED.add(reduced);
  return reduced;
}

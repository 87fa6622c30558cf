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
 * line and paragraph separators, bidi overrides and lone surrogates become `\uXXXX`.
 */
export function escapeControl(text: string): string {
  return text.replace(
    // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]|\p{Cs}/gu,
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
  const escaped = escapeControl(cut).replace(/["\\]/g, (c) => `\\${c}`);
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
    super(clean(String(message)), options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.provider = cleanOptional(options.provider);
    this.keyUri = cleanOptional(options.keyUri);
    this.requestId = cleanOptional(options.requestId);
    this.retryable = options.retryable ?? RETRYABLE_BY_DEFAULT.has(code);
    this.retryAfterMs = options.retryAfterMs;
  }

  /** The same error with the provider and key filled in where the thrower did not know them. */
  withDetails(details: { provider?: string; keyUri?: string }): KeyportError {
    if (
      (this.provider ?? details.provider) === this.provider &&
      (this.keyUri ?? details.keyUri) === this.keyUri
    ) {
      return this;
    }
    const copy = new (this.constructor as typeof KeyportError)(this.code, this.message, {
      provider: this.provider ?? details.provider,
      keyUri: this.keyUri ?? details.keyUri,
      requestId: this.requestId,
      retryable: this.retryable,
      retryAfterMs: this.retryAfterMs,
      cause: this.cause,
    });
    if (this.stack !== undefined) copy.stack = this.stack;
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

  override withDetails(details: { provider?: string; keyUri?: string }): KeyportError {
    const copy = new UnsupportedError(this.capability, this.message, {
      provider: this.provider ?? details.provider,
      keyUri: this.keyUri ?? details.keyUri,
      requestId: this.requestId,
      cause: this.cause,
    });
    if (this.stack !== undefined) copy.stack = this.stack;
    return copy;
  }
}

export function isKeyportError(value: unknown, code?: ErrorCode): value is KeyportError {
  return value instanceof KeyportError && (code === undefined || value.code === code);
}

/** Shorthand used by adapters and core alike. */
export function keyportError(code: ErrorCode, message: string, options?: KeyportErrorOptions): KeyportError {
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

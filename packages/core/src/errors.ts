/**
 * One error type for every provider. `code` is stable and append-only; `cause` keeps the
 * provider's original error reachable for debugging. Messages are written by keyport, never
 * copied from inputs: no plaintext, key bytes or context values may ever appear in them.
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
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.provider = options.provider;
    this.keyUri = options.keyUri;
    this.requestId = options.requestId;
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

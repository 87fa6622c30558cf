/**
 * Strings that came from a message or a caller, made safe to put in an error message: a
 * provider id or a key URI can carry newlines or terminal escape sequences (log injection)
 * and be 65,535 bytes long. And provider errors reduced to what helps an operator, so an SDK
 * error object (request and response, headers, credentials' metadata) never rides along in
 * `cause` through `util.inspect`, `--verbose` or a JSON log.
 */
import { type ErrorCode, KeyportError } from '@keyport/core';

/** Longest quoted value, in characters before escaping. */
export const QUOTE_MAX = 80;

// C0 and C1 controls, DEL, line/paragraph separators and bidi controls (which reorder what a
// terminal shows), and lone surrogates (with the u flag a surrogate range matches only those).
const UNSAFE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff\ud800-\udfff"\\]/gu;

function escapeChar(c: string): string {
  switch (c) {
    case '"':
      return '\\"';
    case '\\':
      return '\\\\';
    case '\n':
      return '\\n';
    case '\r':
      return '\\r';
    case '\t':
      return '\\t';
    default:
      return `\\u${(c.codePointAt(0) as number).toString(16).padStart(4, '0')}`;
  }
}

/** `value` in double quotes, control characters escaped, cut to `max` characters with "…". */
export function quoted(value: unknown, max = QUOTE_MAX): string {
  const s = typeof value === 'string' ? value : String(value);
  let cut = s.length > max ? s.slice(0, max) : s;
  // Never cut a surrogate pair in half.
  if (cut.length < s.length && /[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  const body = cut.replace(UNSAFE, escapeChar);
  return cut.length < s.length ? `"${body}"…(${s.length} chars)` : `"${body}"`;
}

/** What is kept of a provider's error: its code, message and request id, nothing else. */
export interface ReducedCause {
  readonly code: string | undefined;
  readonly message: string;
  readonly requestId: string | undefined;
}

const MESSAGE_MAX = 300;

function field(e: object, name: string): unknown {
  try {
    return (e as Record<string, unknown>)[name];
  } catch {
    return undefined;
  }
}

function shortText(v: unknown, max: number): string | undefined {
  if (typeof v !== 'string' && typeof v !== 'number') return undefined;
  const s = String(v);
  // Escaped but not quoted: this is the provider's own text, shown as such.
  const q = quoted(s, max);
  return q.slice(1, q.lastIndexOf('"'));
}

/** Reduces any thrown value to `{ code, message, requestId }` (strings escaped and capped). */
export function reduceCause(e: unknown): ReducedCause | undefined {
  if (e === undefined || e === null) return undefined;
  if (typeof e !== 'object')
    return { code: undefined, message: shortText(e, MESSAGE_MAX) ?? '', requestId: undefined };
  const meta = field(e, '$metadata');
  const requestId =
    shortText(field(e, 'requestId'), 100) ??
    (typeof meta === 'object' && meta !== null ? shortText(field(meta, 'requestId'), 100) : undefined);
  const code = shortText(field(e, 'code'), 100) ?? shortText(field(e, 'name'), 100);
  return { code, message: shortText(field(e, 'message'), MESSAGE_MAX) ?? '', requestId };
}

/**
 * A KeyportError as the envelope passes it on: same code, provider, key, request id and
 * retryability, the message escaped and capped, and the cause reduced. A KeyportError
 * subclass (`DataKeyUnavailableError`, ...) made by the envelope itself is kept as it is.
 */
export function reducedError(e: KeyportError): KeyportError {
  const cause = e.cause;
  if (cause === undefined || isReduced(cause)) return e;
  const out = new KeyportError(e.code as ErrorCode, e.message, {
    provider: e.provider,
    keyUri: e.keyUri,
    requestId: e.requestId,
    retryable: e.retryable,
    retryAfterMs: e.retryAfterMs,
    cause: reduceCause(cause),
  });
  if (e.stack !== undefined) out.stack = e.stack;
  return out;
}

/** Provider errors leave the envelope with their `cause` reduced (code, message, request id). */
export function rethrowReduced(e: unknown): never {
  throw e instanceof KeyportError ? reducedError(e) : e;
}

function isReduced(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || v instanceof Error) return false;
  const keys = Object.keys(v);
  return keys.every((k) => k === 'code' || k === 'message' || k === 'requestId');
}

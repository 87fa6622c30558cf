/**
 * Argument checks of the driver's own public surface: `Pkcs11Provider` methods may be called
 * directly, not only through core's `Keyport` (which checks the same shapes first). A missing
 * `o`, a `null` request, a string where bytes belong, a ref that is not `{ uri: string }` or a
 * signal that is not an AbortSignal is InvalidArgument naming the argument, before any PKCS#11
 * call — never a raw TypeError from inside pkcs11js.
 *
 * Each check is a few type tests on the path core takes (its arguments are already well-formed);
 * core's validators, which build the message, run only once a test fails. No per-byte work. A
 * sign or verify request is the exception: it always goes through core's own rule (a copy of a
 * two-field object, next to an asymmetric signature), so it is exactly as strict as core.
 */
import {
  checkBytes,
  checkInteger,
  checkKeyLike,
  checkOptions,
  checkSignal,
  checkString,
  invalidArgument,
  KeyportError,
  type KeyRef,
  SIGN_OPTIONS,
  type SigningAlgorithm,
  signRequestFrom,
} from '@keyport/core';

/** A check's error with the provider filled in; a caller's own exception (a getter) becomes InvalidArgument. */
export function labelled(e: unknown, provider: string): unknown {
  if (e instanceof KeyportError) return e.withDetails({ provider });
  return e;
}

/** Reads `field` of a caller's object once; a getter or proxy trap that throws is InvalidArgument. */
function read(value: object, field: string, option: string): unknown {
  try {
    return (value as Record<string, unknown>)[field];
  } catch {
    throw invalidArgument(option, 'reading it threw (a getter or proxy that fails)');
  }
}

/** An object argument the contract requires (`o`, a request): undefined and null are refused. */
function requiredObject(value: unknown, option: string, expected: string): object {
  if (typeof value === 'object' && value !== null) return value;
  if (value === undefined) throw invalidArgument(option, `expected ${expected}, got undefined`);
  checkOptions(value, option, {}); // throws, naming the type given
  throw invalidArgument(option, `expected ${expected}`);
}

/**
 * The signal of a call's options `o` (`{ signal }`; lists may add `pageSize`). `o` is required
 * where the contract requires it; its signal may be left out (the call then cannot be aborted).
 */
export function signalArg(o: unknown, required = true): AbortSignal | undefined {
  if (o === undefined && !required) return undefined;
  const options = requiredObject(o, 'o', 'call options { signal }');
  const signal = read(options, 'signal', 'o.signal');
  return signal === undefined || signal instanceof AbortSignal ? signal : checkSignal(signal, 'o.signal');
}

/** listKeys' options: a signal and an optional page size (a hint this driver does not need). */
export function listArg(o: unknown): AbortSignal | undefined {
  const signal = signalArg(o);
  const pageSize = read(o as object, 'pageSize', 'o.pageSize');
  if (pageSize !== undefined) checkInteger(pageSize, 'o.pageSize', 1, 10_000);
  return signal;
}

/**
 * A key reference `{ uri: string, version?: string }`, read once into a copy (a getter cannot
 * answer differently later). A bare URI string is refused: the contract takes a KeyRef.
 */
export function refArg(ref: unknown): KeyRef {
  if (typeof ref === 'object' && ref !== null) {
    const uri = read(ref, 'uri', 'ref.uri');
    const version = read(ref, 'version', 'ref.version');
    if (typeof uri === 'string' && uri !== '') {
      if (version === undefined) return { uri };
      if (typeof version === 'string') return { uri, version };
    }
  } else if (typeof ref === 'string') {
    throw invalidArgument('ref', 'expected { uri, version? }, got a string (wrap a URI as { uri })');
  }
  // Not the shape core passes: core's check names what is wrong (and refuses unknown fields).
  return checkKeyLike(ref, 'ref');
}

/** Bytes: one `instanceof` test. */
export const bytesArg = (value: unknown, option: string): Uint8Array => checkBytes(value, option);

/** A request object the contract requires (`req`): undefined, null and non-objects are refused. */
export function requestArg(req: unknown, expected = 'a request object'): Record<string, unknown> {
  return requiredObject(req, 'req', expected) as Record<string, unknown>;
}

/**
 * A sign or verify request, checked by core's own rule (`signRequestFrom` over `checkOptions`,
 * as core's Keyport and the other adapters read it): a known algorithm, a messageType of exactly
 * 'message' or 'digest' (anything else — 'Digest', 'DIGEST' — is refused, not signed as a
 * message: the signature would be over a hash of the digest, valid here and nowhere else), no
 * unknown field, no getter. The request itself is required: the driver contract passes one.
 */
export function signArg(req: unknown): {
  algorithm: SigningAlgorithm | undefined;
  messageType: 'message' | 'digest';
} {
  const checked = signRequestFrom(
    checkOptions(requestArg(req, '{ algorithm?, messageType? }'), 'req', SIGN_OPTIONS),
    'req',
  );
  return { algorithm: checked.algorithm, messageType: checked.messageType ?? 'message' };
}

/** A key name for `uriFor`: a non-empty string (the URI printer escapes it). */
export const nameArg = (name: unknown): string => checkString(name, 'name', { min: 1 });

/** A key URI string for `parseUri` (core's parser refuses what is malformed). */
export const uriArg = (uri: unknown): string => checkString(uri, 'uri', { min: 1 });

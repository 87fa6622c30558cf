/**
 * The pieces every driver's own argument checks share. A driver's public methods may be called
 * directly, not only through `Keyport` (which checks the same shapes first); each adapter checks
 * its arguments with core's validators and labels the error with itself. Labelling and the call
 * options `o` are the same everywhere, so they live here.
 */
import { KeyportError } from './errors.js';
import { checkInteger, checkSignal } from './validate.js';

/**
 * Runs `check`; a KeyportError it throws gains `provider` (and `keyUri`, when known). Anything
 * else thrown came from reading the caller's object (a getter or Proxy that throws) and is
 * InvalidArgument, never the caller's raw exception.
 */
export function checkedFor<T>(provider: string, keyUri: string | undefined, check: () => T): T {
  try {
    return check();
  } catch (error) {
    const details = { provider, ...(keyUri !== undefined ? { keyUri } : {}) };
    throw error instanceof KeyportError
      ? error.withDetails(details)
      : new KeyportError(
          'InvalidArgument',
          'an argument could not be read (a getter or proxy that throws)',
          details,
        );
  }
}

/** A signal that never fires: a direct call that gave none. */
const NEVER = new AbortController().signal;

/**
 * A driver call's options `o` as a direct caller may give them: omitted, or `{ signal? }` (lists:
 * also `pageSize`, 1 to 10,000 as core checks it). A missing signal is one that never fires.
 */
export function driverCallOptions(o: unknown, list = false): { signal: AbortSignal; pageSize?: number } {
  if (o === undefined) return { signal: NEVER };
  if (typeof o !== 'object' || o === null) {
    throw new KeyportError('InvalidArgument', `o: expected an object, got ${o === null ? 'null' : typeof o}`);
  }
  const { signal, pageSize } = o as { signal?: unknown; pageSize?: unknown };
  const checked = signal === undefined ? NEVER : checkSignal(signal, 'o.signal');
  if (!list || pageSize === undefined) return { signal: checked };
  return { signal: checked, pageSize: checkInteger(pageSize, 'o.pageSize', 1, 10_000) };
}

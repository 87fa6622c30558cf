/**
 * One request shared by every caller that needs its answer at the same time: a key's spec
 * looked up once however many first calls arrive together, one login for every call waiting for
 * a token. Adapters need this in several places and may not import each other, so it lives here.
 *
 * The request runs under a signal of its own, never its starter's: one caller giving up must not
 * fail the callers that joined it. A caller whose own signal fires stops waiting at once; when the
 * last one leaves, the request is aborted (nobody wants its answer) and forgotten, so the next
 * caller starts afresh.
 */
import { KeyportError } from './errors.js';

/** A request in flight, as kept in the map `joinSharedRequest` is given. */
export interface SharedRequest<T> {
  readonly result: Promise<T>;
  readonly controller: AbortController;
  waiters: number;
}

/**
 * The answer of the request for `key` in `requests`, started with `start` when none is in flight.
 * Rejected with `aborted(signal)` as soon as `signal` fires (before anything is started, if it
 * already has); otherwise settles as the request does. A settled request leaves the map.
 */
export function joinSharedRequest<K, T>(
  requests: Map<K, SharedRequest<T>>,
  key: K,
  start: (signal: AbortSignal) => Promise<T>,
  signal: AbortSignal,
  aborted: (signal: AbortSignal) => unknown,
): Promise<T> {
  if (signal.aborted) return Promise.reject(aborted(signal));
  let request = requests.get(key);
  if (request === undefined) {
    const controller = new AbortController();
    let result: Promise<T>;
    try {
      result = start(controller.signal);
    } catch (error) {
      result = Promise.reject(error);
    }
    const started: SharedRequest<T> = { controller, waiters: 0, result };
    const forget = (): void => {
      if (requests.get(key) === started) requests.delete(key);
    };
    result.then(forget, forget);
    requests.set(key, started);
    request = started;
  }
  const joined = request;
  return new Promise<T>((resolve, reject) => {
    let waiting = true;
    const leave = (): boolean => {
      if (!waiting) return false;
      waiting = false;
      joined.waiters--;
      signal.removeEventListener('abort', onAbort);
      return true;
    };
    const onAbort = (): void => {
      if (!leave()) return;
      if (joined.waiters === 0) {
        if (requests.get(key) === joined) requests.delete(key);
        joined.controller.abort(signal.reason);
      }
      reject(aborted(signal));
    };
    joined.waiters++;
    signal.addEventListener('abort', onAbort, { once: true });
    joined.result.then(
      (value) => {
        if (leave()) resolve(value);
      },
      (error: unknown) => {
        if (leave()) reject(error);
      },
    );
  });
}

/**
 * The error for a caller that stopped waiting because its own signal fired: Timeout when the
 * signal's reason is a TimeoutError (`AbortSignal.timeout`), else Aborted. `call` names what was
 * waited for ("the Vault call"); nothing of the request is in it.
 */
export function abortedWaitError(provider: string, call: string): (signal: AbortSignal) => KeyportError {
  return (signal) => {
    const timedOut = signal.reason instanceof Error && signal.reason.name === 'TimeoutError';
    return new KeyportError(
      timedOut ? 'Timeout' : 'Aborted',
      `${call} ${timedOut ? 'timed out' : 'was aborted'}`,
      {
        provider,
        retryable: false,
      },
    );
  };
}

/**
 * Settles as `promise` does, or rejects with `aborted(signal)` as soon as `signal` fires (for
 * calls that take no signal of their own: an iterator's `next()`, an SDK call that ignores it).
 * The promise is left to settle unobserved; its later rejection is swallowed.
 */
export function settleOrAbort<T>(
  promise: Promise<T>,
  signal: AbortSignal,
  aborted: (signal: AbortSignal) => unknown,
): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(aborted(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      promise.catch(() => undefined);
      reject(aborted(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * Runs `fn` once every earlier call for `key` in `turns` has settled: callers of one key go one
 * at a time (e.g. two creates of one name: the second sees the first one's key). A caller whose
 * signal fires while waiting leaves at once, rejected with `aborted(signal)`; the callers after
 * it still wait for the ones before it.
 */
export async function oneAtATime<K, T>(
  turns: Map<K, Promise<void>>,
  key: K,
  signal: AbortSignal,
  aborted: (signal: AbortSignal) => unknown,
  fn: () => Promise<T>,
): Promise<T> {
  const before = turns.get(key);
  let finished: () => void = () => undefined;
  const mine = new Promise<void>((resolve) => {
    finished = resolve;
  });
  // Never rejects: each turn ends when its caller's `finished` runs.
  const turn = before === undefined ? mine : before.then(() => mine);
  turns.set(key, turn);
  try {
    if (before !== undefined) await settleOrAbort(before, signal, aborted);
    else if (signal.aborted) throw aborted(signal);
    return await fn();
  } finally {
    finished();
    if (turns.get(key) === turn) turns.delete(key);
  }
}

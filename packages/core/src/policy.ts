/**
 * The call policy: how core runs every provider operation. Retries use exponential backoff
 * with full jitter, on retryable codes only, bounded by attempts and by an overall deadline;
 * each attempt gets its own timeout; the caller's AbortSignal is honoured at every await,
 * including backoff sleeps.
 *
 * Adapters turn their SDK's own retries down (maxAttempts: 1 or equivalent) so attempts do not
 * multiply: with SDK retries at N and core at M a throttled call would be tried N×M times.
 */
import { unwatch, watchUntil } from './deadline-watch.js';
import { KeyportError, toKeyportError } from './errors.js';
import { checkDeadlineMs, checkInteger, checkSignal, MAX_ATTEMPTS, MAX_TIMER_MS } from './validate.js';

export interface RetryPolicy {
  /** Total attempts including the first; 1 disables retries. */
  readonly maxAttempts: number;
  /** Backoff cap for attempt n is min(maxDelayMs, baseDelayMs * 2^(n-1)); the delay is uniform in [0, cap]. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** Per-attempt timeout; undefined leaves attempts bounded only by the overall deadline. */
  readonly attemptTimeoutMs?: number;
  /** Overall deadline for all attempts when the call gives no timeoutMs. */
  readonly deadlineMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 4,
  baseDelayMs: 100,
  maxDelayMs: 5_000,
  attemptTimeoutMs: 30_000,
  deadlineMs: 60_000,
};

export interface PolicyHooks {
  /** Source of jitter in [0, 1); injectable for tests. */
  readonly random?: () => number;
  /** Turns a raw provider error into a KeyportError (the adapter's mapError). */
  readonly mapError?: (error: unknown) => KeyportError;
  /**
   * Sees every failed attempt's error before the retry decision and answers the error the call
   * goes on with: one not retryable ends the call. `cutOff` is true when our deadline or the
   * caller's abort cut the attempt off. Core gives it for operations that must not run twice
   * (repeat.ts), so an attempt that may have taken effect is not sent again.
   */
  readonly settle?: ((error: KeyportError, cutOff: boolean) => KeyportError) | undefined;
}

/** Resolves after `ms`, or rejects with Aborted as soon as `signal` fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    checkInteger(ms, 'ms', 0, MAX_TIMER_MS);
    if (signal !== undefined) checkSignal(signal, 'signal');
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

const TIMEOUT_REASON = Symbol('keyport.timeout');

class DeadlineReason extends Error {
  readonly [TIMEOUT_REASON] = true;
  constructor(readonly scope: 'attempt' | 'deadline') {
    super(`keyport ${scope} timeout`);
  }
}

/** Aborted when the caller aborted, Timeout when one of our own deadlines fired. */
function abortError(signal: AbortSignal): KeyportError {
  const reason: unknown = signal.reason;
  if (reason instanceof DeadlineReason) {
    return new KeyportError(
      'Timeout',
      `the ${reason.scope === 'attempt' ? 'attempt' : 'operation'} timed out`,
      {
        retryable: reason.scope === 'attempt',
      },
    );
  }
  return new KeyportError('Aborted', 'the operation was aborted', { retryable: false });
}

/** The backoff cap for a 1-based attempt number (the delay after it is uniform in [0, cap]). */
export function backoffCap(policy: RetryPolicy, attempt: number): number {
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
}

export interface CallOutcome<T> {
  readonly value: T;
  readonly attempts: number;
}

/**
 * Runs `attempt` under the policy. `attempt` receives one signal per attempt that fires on the
 * caller's abort, the overall deadline or the per-attempt timeout, and must pass it to the SDK.
 * Errors leave as KeyportErrors.
 *
 * Each attempt costs one AbortController, one watched deadline (whichever of the attempt
 * timeout and the remaining deadline comes first; deadline-watch.ts) and, when the caller gave a
 * signal, an entry in that signal's followers (see `follow`).
 */
export async function runWithPolicy<T>(
  attempt: (signal: AbortSignal) => Promise<T>,
  policy: RetryPolicy,
  options: { signal?: AbortSignal | undefined; timeoutMs?: number | undefined },
  hooks: PolicyHooks = {},
): Promise<CallOutcome<T>> {
  assertPolicy(policy);
  const caller = options.signal === undefined ? undefined : checkSignal(options.signal, 'options.signal');
  const timeoutMs =
    options.timeoutMs === undefined
      ? policy.deadlineMs
      : checkDeadlineMs(options.timeoutMs, 'options.timeoutMs');
  const random = hooks.random ?? Math.random;
  const mapError = hooks.mapError ?? ((e: unknown) => toKeyportError(e));
  // Monotonic, like each attempt's deadline: a wall-clock step between attempts must neither
  // end a retried call early nor give it more than its budget.
  const startedAt = performance.now();
  const deadlineAt = startedAt + timeoutMs;
  for (let n = 1; ; n++) {
    if (caller?.aborted) throw abortError(caller);
    // The first attempt starts now: no second clock read (this runs for every provider call).
    const now = n === 1 ? startedAt : performance.now();
    const remaining = deadlineAt - now;
    if (remaining <= 0) throw abortError(AbortSignal.abort(new DeadlineReason('deadline')));
    const controller = new AbortController();
    const limit = policy.attemptTimeoutMs;
    const byAttempt = limit !== undefined && limit < remaining;
    // Our deadline and the caller's abort both abort the attempt's own signal and cut the
    // attempt off directly: no listener on any signal per attempt.
    let cutOff: (() => void) | undefined;
    const deadline = watchUntil(now + (byAttempt ? limit : remaining), () => {
      controller.abort(new DeadlineReason(byAttempt ? 'attempt' : 'deadline'));
      cutOff?.();
    });
    const onCallerAbort =
      caller === undefined
        ? undefined
        : () => {
            controller.abort(caller.reason);
            cutOff?.();
          };
    if (onCallerAbort !== undefined) follow(caller as AbortSignal, onCallerAbort);
    const signal = controller.signal;
    let error: KeyportError;
    try {
      const value = await raceAbort(attempt(signal), signal, (f) => {
        cutOff = f;
      });
      return { value, attempts: n };
    } catch (e) {
      // A deadline or abort wins over whatever the SDK threw when it was cut off.
      error = signal.aborted ? abortError(signal) : mapError(e);
    } finally {
      unwatch(deadline);
      if (onCallerAbort !== undefined) unfollow(caller as AbortSignal, onCallerAbort);
    }
    if (hooks.settle !== undefined) error = hooks.settle(error, signal.aborted);
    if (!error.retryable || n >= policy.maxAttempts) throw error;
    const jitter = random();
    const fraction = Number.isFinite(jitter) ? Math.min(Math.max(jitter, 0), 1) : 0;
    const suggested = error.retryAfterMs;
    const serverDelay =
      typeof suggested === 'number' && Number.isFinite(suggested) ? Math.max(0, suggested) : 0;
    const delay = Math.max(serverDelay, Math.floor(fraction * backoffCap(policy, n)));
    // The sleep never outlasts the deadline. Whole milliseconds, rounded up: the time left and a
    // server's suggestion are fractional, and sleep takes an integer.
    // A derived signal, not the caller's own: see the MaxListeners note above.
    const left = Math.max(0, deadlineAt - performance.now());
    await sleep(Math.ceil(Math.min(delay, left)), caller && AbortSignal.any([caller]));
    // A wait the deadline cut short ends the call with Timeout: a timer may fire a little before
    // its time by the monotonic clock, and an attempt then would start with nothing left.
    if (delay >= left) throw abortError(AbortSignal.abort(new DeadlineReason('deadline')));
  }
}

/** Policies validated and frozen by `checkedPolicy`: they cannot have changed since. */
const checkedPolicies = new WeakSet<RetryPolicy>();

/** A frozen, validated copy of `policy` that runWithPolicy does not check again on every call. */
export function checkedPolicy(policy: RetryPolicy): RetryPolicy {
  const copy = Object.freeze({ ...policy });
  assertPolicy(copy);
  checkedPolicies.add(copy);
  return copy;
}

/** Every field of a full policy in range (validated again here: runWithPolicy is public). */
function assertPolicy(policy: RetryPolicy): void {
  if (checkedPolicies.has(policy)) return;
  checkInteger(policy.maxAttempts, 'retry.maxAttempts', 1, MAX_ATTEMPTS);
  checkInteger(policy.baseDelayMs, 'retry.baseDelayMs', 0, MAX_TIMER_MS);
  checkInteger(policy.maxDelayMs, 'retry.maxDelayMs', 0, MAX_TIMER_MS);
  if (policy.attemptTimeoutMs !== undefined)
    checkDeadlineMs(policy.attemptTimeoutMs, 'retry.attemptTimeoutMs');
  checkDeadlineMs(policy.deadlineMs, 'retry.deadlineMs');
}

/**
 * Attempts in flight per caller signal, cut off together by one listener on the signal, added
 * when its first attempt starts and removed when its last one ends (a listener left on an
 * `AbortSignal.timeout` signal would keep it alive until it fires). Neither a listener per
 * attempt (a signal shared by many concurrent calls would trip Node's MaxListeners warning) nor
 * `AbortSignal.any` per attempt (each registers the new signal with the caller's through a
 * WeakRef: a call with a signal cost several times one without, most of it in the collector).
 */
interface Followers {
  readonly attempts: Set<() => void>;
  readonly listener: () => void;
}
const followers = new WeakMap<AbortSignal, Followers>();

export function follow(signal: AbortSignal, onAbort: () => void): void {
  let f = followers.get(signal);
  if (f === undefined) {
    const attempts = new Set<() => void>();
    f = {
      attempts,
      listener: () => {
        followers.delete(signal);
        for (const cutOff of [...attempts]) cutOff();
      },
    };
    followers.set(signal, f);
    signal.addEventListener('abort', f.listener, { once: true });
  }
  f.attempts.add(onAbort);
}

export function unfollow(signal: AbortSignal, onAbort: () => void): void {
  const f = followers.get(signal);
  if (f === undefined || !f.attempts.delete(onAbort) || f.attempts.size > 0) return;
  followers.delete(signal);
  signal.removeEventListener('abort', f.listener);
}

/**
 * Settles with the promise, or rejects as soon as the attempt is cut off (SDKs that ignore
 * signals): the attempt's deadline and the caller's abort call the function given to
 * `onCutOff`, so nothing listens on the signal itself.
 */
function raceAbort<T>(
  promise: Promise<T>,
  signal: AbortSignal,
  onCutOff: (cutOff: () => void) => void,
): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(abortError(signal));
  }
  return new Promise<T>((resolve, reject) => {
    onCutOff(() => {
      promise.catch(() => {});
      reject(abortError(signal));
    });
    promise.then(resolve, reject);
  });
}

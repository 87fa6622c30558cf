/**
 * Quotas: a token bucket per worker (`maxRps` storage calls per second), the classification
 * of each provider's throttling answers, backoff with full jitter, and the counts the report
 * shows (calls, throttled, achieved rate) per provider.
 */
import {
  checkSignal,
  describeType,
  type ErrorCode,
  invalidArgument,
  KeyportError,
  keyportError,
} from '@keyport/core';

/** HTTP answers each provider documents as "slow down": S3 503 SlowDown, Blob 503 ServerBusy, GCS 429. */
const THROTTLE_NAMES = new Set([
  'SlowDown',
  'ThrottlingException',
  'Throttling',
  'RequestLimitExceeded',
  'TooManyRequests',
  'ServerBusy',
  'rateLimitExceeded',
]);

export function isThrottle(status: number | undefined, name: string | undefined): boolean {
  return status === 429 || status === 503 || (name !== undefined && THROTTLE_NAMES.has(name));
}

/** A failure worth trying again after a pause: throttling, or a provider that did not answer. */
export function isPassing(e: unknown): boolean {
  return e instanceof KeyportError && (e.code === 'Throttled' || e.code === 'Unavailable');
}

/** How deep a cause chain is walked: SDKs wrap once or twice (GaxiosError → TypeError → socket error). */
const MAX_CAUSE_DEPTH = 8;

function causeChain(e: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let c = e; c !== undefined && c !== null && chain.length < MAX_CAUSE_DEPTH; ) {
    if (chain.includes(c)) break;
    chain.push(c);
    c = typeof c === 'object' ? (c as { cause?: unknown }).cause : undefined;
  }
  return chain;
}

/**
 * The KeyportError `e` is or wraps: an SDK that read the body it was given (the rewrapped
 * message) may wrap that body's own failure (an `Integrity`, an `InvalidCiphertext`) in an error
 * of its own, which would otherwise be labelled a provider failure and retried.
 */
export function keyportErrorIn(e: unknown): KeyportError | undefined {
  return causeChain(e).find((c): c is KeyportError => c instanceof KeyportError);
}

/**
 * JavaScript's own error classes a fault in the code throws (keyport's or an SDK's), not the
 * service. SyntaxError is left out: at run time it comes from parsing an answer (a proxy's HTML
 * page, a body cut short), which another attempt may get right.
 */
const BUG_CLASSES: readonly (new (...args: never[]) => Error)[] = [
  TypeError,
  RangeError,
  ReferenceError,
  URIError,
];
const BUG_NAMES = new Set(BUG_CLASSES.map((c) => c.name));

/**
 * A failure of the connection rather than of the code: a socket error (`ECONNRESET`,
 * `EAI_AGAIN`, anything with a `syscall`), undici's (`UND_ERR_*`, and its `fetch failed` and
 * `terminated` TypeErrors), a stream cut before its end.
 */
function isNetworkFailure(c: unknown): boolean {
  if (typeof c !== 'object' || c === null) return false;
  const { code, syscall, name, message } = c as {
    code?: unknown;
    syscall?: unknown;
    name?: unknown;
    message?: unknown;
  };
  if (typeof syscall === 'string') return true;
  if (name === 'TypeError' && (message === 'fetch failed' || message === 'terminated')) return true;
  if (typeof code !== 'string') return false;
  return (
    (/^E[A-Z0-9_]+$/.test(code) && !code.startsWith('ERR_')) ||
    code.startsWith('UND_ERR_') ||
    code === 'ERR_STREAM_PREMATURE_CLOSE'
  );
}

/**
 * A failure with no HTTP answer that is a fault in the code: a TypeError or another of
 * JavaScript's own classes in the chain, and no network failure under it. Retrying cannot help,
 * and labelling it `Unavailable` hid the real cause behind several attempts and backoff.
 */
function isCodeFault(e: unknown): boolean {
  const chain = causeChain(e);
  if (chain.some(isNetworkFailure)) return false;
  return chain.some(
    (c) => BUG_CLASSES.some((k) => c instanceof k) || (c instanceof Error && BUG_NAMES.has(c.name)),
  );
}

/** The class of a cause, for a message: its name when it is a plain identifier. */
function className(e: unknown): string {
  const name = (e as { name?: unknown })?.name;
  return typeof name === 'string' && /^[A-Za-z_$][\w$]{0,40}$/.test(name) ? name : 'error';
}

/**
 * The 5xx answers whose meaning says every attempt gets the same answer, so they are asked once
 * rather than retried as an outage (maxAttempts requests behind backoff). The others (500, 502,
 * 504, 507, whose RFC 4918 text calls it temporary, and any status not named here) stay
 * `Unavailable`, retried; 503 is throttling.
 * - 501 Not Implemented: the service does not offer what the request asks (an S3-compatible
 *   store answers so to a conditional write it lacks).
 * - 505 HTTP Version Not Supported: the service (or a proxy before it) refuses the HTTP version
 *   the SDK speaks; the next request speaks the same one.
 * - 510 Not Extended: the request lacks an extension the service requires.
 * - 506 Variant Also Negotiates, 508 Loop Detected: the service's own configuration is broken
 *   (RFC 2295 calls 506 an internal configuration error); nothing the client resends changes it.
 * - 511 Network Authentication Required: a captive portal or proxy on the path wants a login.
 */
const PERMANENT_5XX: ReadonlyMap<number, { code: ErrorCode; says: string }> = new Map([
  [501, { code: 'Unsupported', says: 'not implemented by the service' }],
  [505, { code: 'Unsupported', says: 'HTTP version not supported by the service' }],
  [510, { code: 'Unsupported', says: 'the service requires an extension the request lacks' }],
  [506, { code: 'Internal', says: 'the service is misconfigured (variant also negotiates)' }],
  [508, { code: 'Internal', says: 'the service detected a loop' }],
  [511, { code: 'AccessDenied', says: 'the network requires authentication (a captive portal or proxy)' }],
]);

/**
 * A provider failure as a KeyportError: throttling marked retryable; a server error or an
 * unanswered call `Unavailable` (retried); a 5xx whose meaning does not change on retry (501,
 * 505, 510 `Unsupported`; 506, 508 `Internal`; 511 `AccessDenied`) not retried; an answer
 * refusing the request (a 3xx or 4xx no
 * other rule takes: 405, 411, 413, 416, a bucket's 301 to another region) `InvalidArgument`,
 * which retrying cannot change; a KeyportError the SDK wrapped, as it is; a fault in the code
 * (a TypeError) `Internal`, not retried.
 */
export function providerError(
  provider: string,
  what: string,
  status: number | undefined,
  name: string | undefined,
  cause: unknown,
): KeyportError {
  const wrapped = keyportErrorIn(cause);
  if (wrapped !== undefined) return wrapped;
  if ((cause as { name?: string })?.name === 'AbortError')
    return new KeyportError('Aborted', `${provider} ${what}: aborted`, { provider, cause });
  if (isThrottle(status, name))
    return new KeyportError('Throttled', `${provider} ${what}: throttled (${status ?? name})`, {
      provider,
      cause,
    });
  if (status === 401 || status === 403)
    return new KeyportError('AccessDenied', `${provider} ${what}: access denied (${status})`, {
      provider,
      cause,
    });
  const permanent = status === undefined ? undefined : PERMANENT_5XX.get(status);
  if (permanent !== undefined)
    return keyportError(permanent.code, `${provider} ${what}: ${permanent.says} (${status} ${name ?? ''})`, {
      provider,
      cause,
      retryable: false,
      ...(permanent.code === 'Unsupported' ? { capability: 'operation' } : {}),
    });
  if (status !== undefined && status >= 500)
    return new KeyportError('Unavailable', `${provider} ${what}: server error ${status}`, {
      provider,
      cause,
    });
  // 408 Request Timeout and 425 Too Early ask for the request again.
  if (status === 408 || status === 425)
    return new KeyportError('Unavailable', `${provider} ${what}: not answered (${status})`, {
      provider,
      cause,
    });
  if (status !== undefined && status >= 300)
    return new KeyportError('InvalidArgument', `${provider} ${what}: refused (${status} ${name ?? ''})`, {
      provider,
      cause,
    });
  if (status === undefined && isCodeFault(cause))
    return new KeyportError(
      'Internal',
      `${provider} ${what} failed: ${className(cause)} (a fault in the code, not in the service; see cause)`,
      { provider, cause },
    );
  return new KeyportError(
    'Unavailable',
    `${provider} ${what} failed${name !== undefined ? ` (${name})` : ''}`,
    {
      provider,
      cause,
    },
  );
}

/**
 * The rates a token bucket takes, calls per second: one call every 1000 s at the least, a million
 * a second at the most, or `Infinity` for no limit. A rate near zero made a wait past 2^31 ms,
 * which Node's timers fire at once: the bucket woke every millisecond instead of waiting.
 */
export const MIN_MAX_RPS = 0.001;
export const MAX_MAX_RPS = 1_000_000;

/**
 * Storage calls per second, with a burst of one second's worth (at least one call): a rate below
 * 1 lets one call through at once, then one every 1/rate seconds (0.5: one every 2 s).
 * `Infinity` disables it.
 */
export class TokenBucket {
  private tokens: number;
  private last = performance.now();
  private queue: Promise<void> = Promise.resolve();
  constructor(readonly ratePerSecond: number) {
    // A string passed the comparison ('5' > 0) and then disabled the limit (not finite).
    if (typeof ratePerSecond !== 'number')
      throw invalidArgument('maxRps', `expected a positive number, got ${describeType(ratePerSecond)}`);
    if (
      !(
        ratePerSecond === Number.POSITIVE_INFINITY ||
        (ratePerSecond >= MIN_MAX_RPS && ratePerSecond <= MAX_MAX_RPS)
      )
    )
      throw new KeyportError(
        'InvalidArgument',
        `maxRps: expected a number of calls per second from ${MIN_MAX_RPS} to ${MAX_MAX_RPS}, or Infinity`,
      );
    this.tokens = Number.isFinite(ratePerSecond) ? Math.max(1, ratePerSecond) : 0;
  }

  /** Resolves when a call may go; callers are served in arrival order. */
  take(signal?: AbortSignal): Promise<void> {
    if (signal !== undefined) {
      try {
        checkSignal(signal, 'signal');
      } catch (e) {
        return Promise.reject(e);
      }
    }
    if (!Number.isFinite(this.ratePerSecond)) return Promise.resolve();
    const turn = this.queue.then(async () => {
      const burst = Math.max(1, this.ratePerSecond);
      for (;;) {
        const now = performance.now();
        this.tokens = Math.min(burst, this.tokens + ((now - this.last) / 1000) * this.ratePerSecond);
        this.last = now;
        if (this.tokens >= 1) {
          this.tokens -= 1;
          return;
        }
        signal?.throwIfAborted();
        await sleep(((1 - this.tokens) / this.ratePerSecond) * 1000, signal);
      }
    });
    this.queue = turn.catch(() => undefined);
    return turn;
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Full-jitter exponential backoff: attempt 0 → up to `base`, capped at `cap` ms. */
export function backoffMs(attempt: number, base = 100, cap = 10_000): number {
  return Math.random() * Math.min(cap, base * 2 ** attempt);
}

export interface ProviderCalls {
  calls: number;
  throttled: number;
  /** Calls per second over the worker's run. */
  rate: number;
}

/** Per-provider call and throttle counts (storage and KMS alike). */
export class CallStats {
  private readonly started = performance.now();
  private readonly byProvider = new Map<string, { calls: number; throttled: number }>();

  call(provider: string): void {
    this.entry(provider).calls++;
  }
  throttled(provider: string): void {
    this.entry(provider).throttled++;
  }
  private entry(provider: string) {
    let e = this.byProvider.get(provider);
    if (e === undefined) {
      e = { calls: 0, throttled: 0 };
      this.byProvider.set(provider, e);
    }
    return e;
  }
  report(): Record<string, ProviderCalls> {
    const seconds = Math.max(0.001, (performance.now() - this.started) / 1000);
    const out: Record<string, ProviderCalls> = Object.create(null);
    for (const [p, e] of this.byProvider)
      out[p] = { ...e, rate: Math.round((e.calls / seconds) * 100) / 100 };
    return out;
  }
}

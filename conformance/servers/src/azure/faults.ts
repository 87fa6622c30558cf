// Fault injection for reliability tests: throttling (429 + Retry-After, as the service throttles),
// added latency, and dropped connections. Set at start or through the admin route.

export interface FaultSettings {
  /** The next `requests` API calls get 429 Throttled with `Retry-After: retryAfterSeconds`. */
  throttle?: { requests: number; retryAfterSeconds?: number };
  /** Milliseconds added before every API call is answered. */
  latencyMs?: number;
  /** The next `n` API calls have their connection destroyed without an answer. */
  dropConnections?: number;
}

export type FaultDecision =
  | { kind: 'drop' }
  | { kind: 'throttle'; retryAfterSeconds: number }
  | { kind: 'pass' };

export class Faults {
  private throttleLeft = 0;
  private retryAfter = 1;
  private dropLeft = 0;
  latencyMs = 0;

  constructor(initial?: FaultSettings) {
    if (initial) this.set(initial);
  }

  /** Replaces all settings. */
  set(f: FaultSettings): void {
    const count = (n: unknown, what: string): number => {
      if (n === undefined) return 0;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0)
        throw new RangeError(`${what} must be an integer >= 0`);
      return n;
    };
    // Validate everything before changing anything.
    const next = {
      throttle: count(f.throttle?.requests, 'throttle.requests'),
      retryAfter:
        f.throttle?.retryAfterSeconds === undefined
          ? 1
          : count(f.throttle.retryAfterSeconds, 'throttle.retryAfterSeconds'),
      latency: count(f.latencyMs, 'latencyMs'),
      drop: count(f.dropConnections, 'dropConnections'),
    };
    this.throttleLeft = next.throttle;
    this.retryAfter = next.retryAfter;
    this.latencyMs = next.latency;
    this.dropLeft = next.drop;
  }

  clear(): void {
    this.set({});
  }

  /** Consumes one injected fault, if any is pending, for the request being served. */
  next(): FaultDecision {
    if (this.dropLeft > 0) {
      this.dropLeft--;
      return { kind: 'drop' };
    }
    if (this.throttleLeft > 0) {
      this.throttleLeft--;
      return { kind: 'throttle', retryAfterSeconds: this.retryAfter };
    }
    return { kind: 'pass' };
  }
}

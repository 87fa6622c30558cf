import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { backoffCap, DEFAULT_RETRY_POLICY, KeyportError, sleep } from '../src/index.js';
import { runWithPolicy } from '../src/policy.js';

const policy = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 1_000, deadlineMs: 10_000 };

describe('call policy', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('backs off exponentially with full jitter, within the cap', async () => {
    const delays: number[] = [];
    let last = Date.now();
    const attempt = vi.fn(async () => {
      const now = Date.now();
      delays.push(now - last);
      last = now;
      throw new KeyportError('Throttled', 'slow down');
    });
    const run = runWithPolicy(attempt, policy, {}, { random: () => 0.999 });
    const settled = expect(run).rejects.toMatchObject({ code: 'Throttled' });
    await vi.runAllTimersAsync();
    await settled;
    expect(attempt).toHaveBeenCalledTimes(4);
    // delays before attempts 2..4: jitter 0.999 of caps 100, 200, 400
    expect(delays.slice(1)).toEqual([99, 199, 399]);
    expect(backoffCap(policy, 10)).toBe(1_000);
  });

  it('uses no delay with zero jitter and honours Retry-After', async () => {
    let calls = 0;
    const run = runWithPolicy(
      async () => {
        calls++;
        if (calls === 1) throw new KeyportError('Throttled', 'x', { retryAfterMs: 700 });
        return 'ok';
      },
      policy,
      {},
      { random: () => 0 },
    );
    await vi.advanceTimersByTimeAsync(699);
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    await expect(run).resolves.toEqual({ value: 'ok', attempts: 2 });
  });

  it('does not retry non-retryable codes', async () => {
    for (const code of [
      'NotFound',
      'AccessDenied',
      'InvalidCiphertext',
      'KeyStateConflict',
      'InvalidArgument',
    ] as const) {
      const attempt = vi.fn(async () => {
        throw new KeyportError(code, 'no');
      });
      await expect(runWithPolicy(attempt, policy, {})).rejects.toMatchObject({ code });
      expect(attempt).toHaveBeenCalledTimes(1);
    }
  });

  it('stops at the overall deadline with Timeout', async () => {
    const attempt = vi.fn(async () => {
      throw new KeyportError('Unavailable', 'down');
    });
    const run = runWithPolicy(
      attempt,
      { ...policy, maxAttempts: 100 },
      { timeoutMs: 1_500 },
      { random: () => 0.999 },
    );
    const settled = expect(run).rejects.toMatchObject({ code: 'Timeout' });
    await vi.advanceTimersByTimeAsync(1_500);
    await settled;
    expect(attempt.mock.calls.length).toBeLessThan(100);
  });

  it('keeps the overall deadline on the monotonic clock across a wall-clock step', async () => {
    // Attempts fail at once and back off 100 ms each; the wall clock jumps between them.
    for (const step of [-3_600_000, 3_600_000]) {
      let calls = 0;
      const run = runWithPolicy(
        async () => {
          calls++;
          if (calls === 2) vi.setSystemTime(Date.now() + step);
          throw new KeyportError('Unavailable', 'down');
        },
        { ...policy, maxAttempts: 100, baseDelayMs: 100, maxDelayMs: 100 },
        { timeoutMs: 1_000 },
        { random: () => 1 },
      );
      const settled = run.then(
        () => 'resolved',
        (e: KeyportError) => e.code,
      );
      // A step forward must not end the call early, a step back must not extend it.
      await vi.advanceTimersByTimeAsync(950);
      expect(calls, `step ${step}`).toBeGreaterThanOrEqual(9);
      await vi.advanceTimersByTimeAsync(60);
      await expect(settled).resolves.toBe('Timeout');
      expect(calls, `step ${step}`).toBeLessThanOrEqual(11);
    }
  });

  it('times out a hung attempt and retries it', async () => {
    let calls = 0;
    const run = runWithPolicy(
      (signal) => {
        calls++;
        if (calls === 1) return new Promise<string>(() => {}); // never settles, ignores the signal
        return Promise.resolve(signal.aborted ? 'aborted' : 'second');
      },
      { ...policy, attemptTimeoutMs: 200 },
      {},
      { random: () => 0 },
    );
    await vi.advanceTimersByTimeAsync(250);
    await expect(run).resolves.toEqual({ value: 'second', attempts: 2 });
  });

  it('cuts off a hung attempt that ignores its signal when the caller aborts', async () => {
    const controller = new AbortController();
    const run = runWithPolicy(() => new Promise<string>(() => {}), policy, { signal: controller.signal });
    const settled = expect(run).rejects.toMatchObject({ code: 'Aborted', retryable: false });
    await vi.advanceTimersByTimeAsync(10);
    controller.abort();
    await settled;
  });

  it('aborts mid-backoff with Aborted and makes no further attempt', async () => {
    const controller = new AbortController();
    const attempt = vi.fn(async () => {
      throw new KeyportError('Throttled', 'x');
    });
    const run = runWithPolicy(attempt, policy, { signal: controller.signal }, { random: () => 0.999 });
    const settled = expect(run).rejects.toMatchObject({ code: 'Aborted', retryable: false });
    await vi.advanceTimersByTimeAsync(50);
    controller.abort();
    await settled;
    await vi.runAllTimersAsync();
    expect(attempt).toHaveBeenCalledTimes(1);
  });

  it('refuses to start when already aborted', async () => {
    const attempt = vi.fn(async () => 1);
    await expect(runWithPolicy(attempt, policy, { signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'Aborted',
    });
    expect(attempt).not.toHaveBeenCalled();
  });

  it('passes a signal that fires when the caller aborts', async () => {
    const controller = new AbortController();
    let seen: AbortSignal | undefined;
    const run = runWithPolicy(
      (signal) => {
        seen = signal;
        return new Promise((_, reject) =>
          signal.addEventListener('abort', () => reject(new Error('sdk abort'))),
        );
      },
      policy,
      { signal: controller.signal },
    );
    controller.abort();
    await expect(run).rejects.toMatchObject({ code: 'Aborted' });
    expect(seen?.aborted).toBe(true);
  });

  it("aborts every attempt in flight on one caller signal, with the caller's reason", async () => {
    const controller = new AbortController();
    const seen: AbortSignal[] = [];
    const runs = Array.from({ length: 3 }, () =>
      runWithPolicy(
        (signal) => {
          seen.push(signal);
          return new Promise<never>(() => {});
        },
        policy,
        { signal: controller.signal },
      ),
    );
    const settled = Promise.all(runs.map((r) => expect(r).rejects.toMatchObject({ code: 'Aborted' })));
    await vi.advanceTimersByTimeAsync(1);
    const reason = new Error('user stop');
    controller.abort(reason);
    await settled;
    expect(seen.map((s) => [s.aborted, s.reason])).toEqual(seen.map(() => [true, reason]));
  });

  it('leaves no listener on the caller signal: one while calls are in flight, none after', async () => {
    vi.useRealTimers();
    const shared = new AbortController().signal;
    const listeners = () => getEventListeners(shared, 'abort').length;
    let most = 0;
    await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        runWithPolicy(
          async () => {
            most = Math.max(most, listeners());
            await new Promise((r) => setTimeout(r, 1 + (i % 4)));
            return i;
          },
          policy,
          { signal: shared },
        ),
      ),
    );
    expect(most).toBe(1);
    expect(listeners()).toBe(0);
    // Sequential calls too, and a timeout signal (a listener left on it keeps it alive until it fires).
    const timeout = AbortSignal.timeout(60_000);
    for (let i = 0; i < 3; i++) await runWithPolicy(async () => i, policy, { signal: timeout });
    expect(getEventListeners(timeout, 'abort')).toHaveLength(0);
    // A call that failed leaves none either.
    await expect(
      runWithPolicy(
        async () => {
          throw new KeyportError('NotFound', 'x');
        },
        policy,
        { signal: shared },
      ),
    ).rejects.toMatchObject({ code: 'NotFound' });
    expect(listeners()).toBe(0);
  });

  it('sleep rejects on abort', async () => {
    const c = new AbortController();
    const p = sleep(1_000, c.signal);
    c.abort();
    await expect(p).rejects.toMatchObject({ code: 'Aborted' });
    expect(DEFAULT_RETRY_POLICY.maxAttempts).toBeGreaterThan(1);
  });

  it('lets many concurrent calls share one caller signal without a MaxListeners warning', async () => {
    vi.useRealTimers();
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(w);
    };
    process.on('warning', onWarning);
    try {
      const shared = new AbortController().signal;
      let calls = 0;
      await Promise.all(
        Array.from({ length: 64 }, () =>
          runWithPolicy(
            async () => {
              calls++;
              if (calls <= 64) throw new KeyportError('Throttled', 'x', { retryAfterMs: 1 });
              await new Promise((r) => setTimeout(r, 5));
              return 1;
            },
            policy,
            { signal: shared },
            { random: () => 0 },
          ),
        ),
      );
      await new Promise((r) => setImmediate(r));
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('call policy, on the real clock', () => {
  it('a suggested wait past the deadline ends in Timeout when the deadline comes, not a refused sleep', async () => {
    let calls = 0;
    const started = performance.now();
    const run = runWithPolicy(
      async () => {
        calls++;
        throw new KeyportError('Throttled', 'x', { retryAfterMs: 60_000 });
      },
      { ...policy, deadlineMs: 40 },
      {},
      { random: () => 0 },
    );
    await expect(run).rejects.toMatchObject({ code: 'Timeout' });
    expect(calls).toBe(1);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('a fractional suggested wait is waited, rounded up, and the call retried', async () => {
    let calls = 0;
    const run = runWithPolicy(
      async () => {
        calls++;
        if (calls === 1) throw new KeyportError('Throttled', 'x', { retryAfterMs: 1.5 });
        return 'ok';
      },
      policy,
      {},
      { random: () => 0 },
    );
    await expect(run).resolves.toEqual({ value: 'ok', attempts: 2 });
  });
});

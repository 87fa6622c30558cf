import { describe, expect, it } from 'vitest';
import {
  abortedWaitError,
  joinSharedRequest,
  oneAtATime,
  type SharedRequest,
  settleOrAbort,
} from '../src/index.js';

const aborted = (signal: AbortSignal) => new Error(`left: ${String(signal.reason)}`);

/** A request whose answer the test gives, recording the signal it ran under. */
function controllable() {
  const starts: AbortSignal[] = [];
  const answers: Array<(value: string) => void> = [];
  const failures: Array<(error: unknown) => void> = [];
  const start = (signal: AbortSignal) => {
    starts.push(signal);
    return new Promise<string>((resolve, reject) => {
      answers.push(resolve);
      failures.push(reject);
      signal.addEventListener('abort', () => reject(new Error('request aborted')), { once: true });
    });
  };
  return { starts, answers, failures, start };
}

describe('joinSharedRequest', () => {
  it('starts one request for concurrent callers of one key, one per key, and forgets it once settled', async () => {
    const requests = new Map<string, SharedRequest<string>>();
    const r = controllable();
    const calls = Array.from({ length: 16 }, () =>
      joinSharedRequest(requests, 'a', r.start, new AbortController().signal, aborted),
    );
    const other = joinSharedRequest(requests, 'b', r.start, new AbortController().signal, aborted);
    expect(r.starts).toHaveLength(2);
    r.answers[0]?.('spec-a');
    r.answers[1]?.('spec-b');
    expect(await Promise.all(calls)).toEqual(new Array(16).fill('spec-a'));
    expect(await other).toBe('spec-b');
    expect(requests.size).toBe(0);
    const again = joinSharedRequest(requests, 'a', r.start, new AbortController().signal, aborted);
    expect(r.starts).toHaveLength(3);
    r.answers[2]?.('spec-a2');
    expect(await again).toBe('spec-a2');
  });

  it("runs under a signal of its own: the starter's abort fails only the starter", async () => {
    const requests = new Map<string, SharedRequest<string>>();
    const r = controllable();
    const starter = new AbortController();
    const first = joinSharedRequest(requests, 'k', r.start, starter.signal, aborted);
    const joiner = joinSharedRequest(requests, 'k', r.start, new AbortController().signal, aborted);
    starter.abort('gone');
    await expect(first).rejects.toThrow('left: gone');
    expect(r.starts[0]?.aborted).toBe(false);
    r.answers[0]?.('spec');
    expect(await joiner).toBe('spec');
    expect(r.starts).toHaveLength(1);
  });

  it('aborts and forgets the request when its last waiter leaves; the next caller starts afresh', async () => {
    const requests = new Map<string, SharedRequest<string>>();
    const r = controllable();
    const a = new AbortController();
    const b = new AbortController();
    const first = joinSharedRequest(requests, 'k', r.start, a.signal, aborted);
    const second = joinSharedRequest(requests, 'k', r.start, b.signal, aborted);
    a.abort('a');
    b.abort('b');
    await expect(first).rejects.toThrow('left: a');
    await expect(second).rejects.toThrow('left: b');
    expect(r.starts[0]?.aborted).toBe(true);
    expect(r.starts[0]?.reason).toBe('b');
    expect(requests.size).toBe(0);
    const third = joinSharedRequest(requests, 'k', r.start, new AbortController().signal, aborted);
    expect(r.starts).toHaveLength(2);
    r.answers[1]?.('fresh');
    expect(await third).toBe('fresh');
  });

  it('passes a failure to every waiter and starts nothing for a caller already aborted', async () => {
    const requests = new Map<string, SharedRequest<string>>();
    const r = controllable();
    const calls = [1, 2, 3].map(() =>
      joinSharedRequest(requests, 'k', r.start, new AbortController().signal, aborted),
    );
    r.failures[0]?.(new Error('denied'));
    for (const c of calls) await expect(c).rejects.toThrow('denied');
    await expect(
      joinSharedRequest(requests, 'k', r.start, AbortSignal.abort('early'), aborted),
    ).rejects.toThrow('left: early');
    expect(r.starts).toHaveLength(1);
    expect(requests.size).toBe(0);
  });

  it('turns a start that throws into a rejection, and removes its abort listeners once settled', async () => {
    const requests = new Map<string, SharedRequest<string>>();
    const signal = new AbortController().signal;
    const thrown = joinSharedRequest(
      requests,
      'k',
      () => {
        throw new Error('sync');
      },
      signal,
      aborted,
    );
    await expect(thrown).rejects.toThrow('sync');
    expect(requests.size).toBe(0);
    const r = controllable();
    const controller = new AbortController();
    let listeners = 0;
    const add = controller.signal.addEventListener.bind(controller.signal);
    const remove = controller.signal.removeEventListener.bind(controller.signal);
    controller.signal.addEventListener = ((...args: Parameters<typeof add>) => {
      listeners++;
      add(...args);
    }) as typeof add;
    controller.signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
      listeners--;
      remove(...args);
    }) as typeof remove;
    const call = joinSharedRequest(requests, 'k', r.start, controller.signal, aborted);
    expect(listeners).toBe(1);
    r.answers[0]?.('ok');
    expect(await call).toBe('ok');
    expect(listeners).toBe(0);
  });
});

describe('settleOrAbort', () => {
  it('settles as the promise does while the signal is quiet, and removes its listener', async () => {
    const controller = new AbortController();
    expect(await settleOrAbort(Promise.resolve(7), controller.signal, aborted)).toBe(7);
    await expect(settleOrAbort(Promise.reject(new Error('no')), controller.signal, aborted)).rejects.toThrow(
      'no',
    );
    controller.abort('later');
    // nothing rejects late: both settled before the abort
  });

  it('rejects as soon as the signal fires, swallowing the promise settling later', async () => {
    const controller = new AbortController();
    let fail = (_e: unknown): void => undefined;
    const stalled = new Promise<number>((_r, reject) => {
      fail = reject;
    });
    const waiting = settleOrAbort(stalled, controller.signal, aborted);
    controller.abort('stop');
    await expect(waiting).rejects.toThrow('left: stop');
    fail(new Error('late')); // must not surface as an unhandled rejection
    await expect(
      settleOrAbort(new Promise(() => undefined), AbortSignal.abort('x'), aborted),
    ).rejects.toThrow('left: x');
  });

  it('abortedWaitError says Timeout for a timeout signal and Aborted otherwise, naming the provider', () => {
    const error = abortedWaitError('p', 'the P call');
    expect(error(AbortSignal.abort())).toMatchObject({ code: 'Aborted', provider: 'p', retryable: false });
    expect(error(AbortSignal.abort(new DOMException('t', 'TimeoutError')))).toMatchObject({
      code: 'Timeout',
      message: expect.stringContaining('the P call timed out'),
    });
  });
});

describe('oneAtATime', () => {
  it('runs the calls for one key one after another, other keys alongside, and forgets finished turns', async () => {
    const turns = new Map<string, Promise<void>>();
    const log: string[] = [];
    const gates: Array<() => void> = [];
    const step = (name: string) => () =>
      new Promise<string>((resolve) => {
        log.push(`start ${name}`);
        gates.push(() => {
          log.push(`end ${name}`);
          resolve(name);
        });
      });
    const signal = new AbortController().signal;
    const a1 = oneAtATime(turns, 'a', signal, aborted, step('a1'));
    const a2 = oneAtATime(turns, 'a', signal, aborted, step('a2'));
    const b1 = oneAtATime(turns, 'b', signal, aborted, step('b1'));
    await new Promise((r) => setImmediate(r));
    expect(log).toEqual(['start a1', 'start b1']);
    gates.shift()?.(); // a1 ends
    await new Promise((r) => setImmediate(r));
    expect(log).toEqual(['start a1', 'start b1', 'end a1', 'start a2']);
    gates.shift()?.(); // b1
    gates.shift()?.(); // a2
    expect(await Promise.all([a1, a2, b1])).toEqual(['a1', 'a2', 'b1']);
    expect(turns.size).toBe(0);
  });

  it('a caller aborted while waiting leaves at once; the next still waits for the one before', async () => {
    const turns = new Map<string, Promise<void>>();
    let release = (): void => undefined;
    const first = oneAtATime(
      turns,
      'k',
      new AbortController().signal,
      aborted,
      () =>
        new Promise<string>((r) => {
          release = () => r('first');
        }),
    );
    const leaving = new AbortController();
    const second = oneAtATime(turns, 'k', leaving.signal, aborted, async () => 'second');
    let thirdRan = false;
    const third = oneAtATime(turns, 'k', new AbortController().signal, aborted, async () => {
      thirdRan = true;
      return 'third';
    });
    leaving.abort('gone');
    await expect(second).rejects.toThrow('left: gone');
    await new Promise((r) => setImmediate(r));
    expect(thirdRan).toBe(false);
    release();
    expect(await first).toBe('first');
    expect(await third).toBe('third');
    expect(turns.size).toBe(0);
    await expect(
      oneAtATime(turns, 'k', AbortSignal.abort('early'), aborted, async () => 'x'),
    ).rejects.toThrow('left: early');
  });
});

import { afterEach, describe, expect, it, vi } from 'vitest';
import { unwatch, watch } from '../src/deadline-watch.js';

describe('deadline watch (one timer for every attempt deadline)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fires once the time has passed, not before, and never after unwatch', async () => {
    vi.useFakeTimers();
    const fired: string[] = [];
    const a = watch(40, () => fired.push('a'));
    const b = watch(40, () => fired.push('b'));
    unwatch(b);
    await vi.advanceTimersByTimeAsync(39);
    expect(fired).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(fired).toEqual(['a']);
    unwatch(a); // after firing: nothing happens
    await vi.advanceTimersByTimeAsync(1_000);
    expect(fired).toEqual(['a']);
  });

  it('an earlier deadline watched after a later one fires at its own time', async () => {
    vi.useFakeTimers();
    const fired: string[] = [];
    const long = watch(2_000, () => fired.push('long'));
    const short = watch(30, () => fired.push('short'));
    await vi.advanceTimersByTimeAsync(30);
    expect(fired).toEqual(['short']);
    await vi.advanceTimersByTimeAsync(1_969);
    expect(fired).toEqual(['short']);
    await vi.advanceTimersByTimeAsync(1);
    expect(fired).toEqual(['short', 'long']);
    unwatch(long);
    unwatch(short);
  });

  it('fires only what is due and keeps watching the rest', async () => {
    vi.useFakeTimers();
    const fired: number[] = [];
    const entries = [10, 200, 30, 400, 400].map((ms) => watch(ms, () => fired.push(ms)));
    await vi.advanceTimersByTimeAsync(100);
    expect(fired).toEqual([10, 30]);
    await vi.advanceTimersByTimeAsync(100);
    expect(fired).toEqual([10, 30, 200]);
    unwatch(entries[3] as (typeof entries)[number]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(fired).toEqual([10, 30, 200, 400]);
  });

  it('a thousand deadlines, some unwatched: each fires once, at its time, in any watch order', async () => {
    vi.useFakeTimers();
    const start = Date.now();
    const firedAt = new Map<number, number[]>();
    const deadlines = Array.from({ length: 1_000 }, (_, i) => 1 + ((i * 7919) % 500));
    const entries = deadlines.map((ms, i) =>
      watch(ms, () => firedAt.set(i, [...(firedAt.get(i) ?? []), Date.now() - start])),
    );
    const dropped = new Set(deadlines.map((_, i) => i).filter((i) => i % 3 === 0));
    for (const i of dropped) unwatch(entries[i] as (typeof entries)[number]);
    for (let t = 0; t < 600; t += 10) await vi.advanceTimersByTimeAsync(10);
    for (const [i, ms] of deadlines.entries()) {
      if (dropped.has(i)) expect(firedAt.has(i), `#${i}`).toBe(false);
      else expect(firedAt.get(i), `#${i}`).toEqual([ms]);
    }
  });

  it('a wall-clock step neither delays nor hastens a deadline (monotonic, as a Node timer)', async () => {
    vi.useFakeTimers();
    const fired: string[] = [];
    const late = watch(500, () => fired.push('after a step back'));
    vi.setSystemTime(Date.now() - 3_600_000); // the wall clock set back an hour
    await vi.advanceTimersByTimeAsync(500);
    expect(fired).toEqual(['after a step back']);
    const early = watch(500, () => fired.push('after a step forward'));
    vi.setSystemTime(Date.now() + 7_200_000);
    await vi.advanceTimersByTimeAsync(499);
    expect(fired).toEqual(['after a step back']);
    await vi.advanceTimersByTimeAsync(1);
    expect(fired).toEqual(['after a step back', 'after a step forward']);
    unwatch(late);
    unwatch(early);
  });

  it('follows fake timers installed after the timer was armed on the real clock', async () => {
    // A real timer armed for an earlier deadline than the one watched under fake time.
    const real = watch(100, () => undefined);
    vi.useFakeTimers();
    let fired = false;
    const fake = watch(500, () => {
      fired = true;
    });
    await vi.advanceTimersByTimeAsync(499);
    expect(fired).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(fired).toBe(true);
    unwatch(fake);
    unwatch(real);
  });

  it('on the real clock: fires after its time, and a watched deadline keeps no stale work', async () => {
    const started = performance.now();
    const firedAfter = await new Promise<number>((resolve) => {
      watch(25, () => resolve(performance.now() - started));
    });
    expect(firedAfter).toBeGreaterThanOrEqual(24);
    expect(firedAfter).toBeLessThan(2_000);
  });
});

// A clock the tests can move: destroy windows, rotation schedules, import-job expiry and IAM
// `request.time` conditions all read this instead of Date.now().
export interface TestClock {
  now(): Date;
  /** Moves the clock forward; state that fell due (destruction, rotation, expiry) settles on the next call. */
  advance(ms: number): void;
  set(to: Date): void;
}

export function createTestClock(start?: Date): TestClock {
  let offsetMs = start === undefined ? 0 : start.getTime() - Date.now();
  return {
    now: () => new Date(Date.now() + offsetMs),
    advance(ms: number) {
      if (!Number.isFinite(ms) || ms < 0) throw new RangeError('clock.advance takes a non-negative number');
      offsetMs += ms;
    },
    set(to: Date) {
      offsetMs = to.getTime() - Date.now();
    },
  };
}

/**
 * Attempt deadlines on one shared timer. Every provider call has a deadline (30 s per attempt by
 * default) that almost never fires; a Node timer per call (a Timeout object, its list, the
 * priority queue, a native re-arm, then all of it undone) was the largest single cost core added
 * to a call whose SDK had just run, and so whose caches were cold. Here a call costs a Set entry:
 * the one timer stays armed at the earliest deadline, is referenced (keeps the process alive, as
 * a call's own timer did) only while some deadline is watched, and on firing aborts what is due
 * and re-arms for the next. Deadlines are on the monotonic clock (`performance.now()`), as a
 * Node timer is: a wall-clock step (NTP, a suspended VM) neither fires them early nor late.
 */

export interface Watched {
  readonly at: number;
  readonly fire: () => void;
}

const watched = new Set<Watched>();
let timer: ReturnType<typeof setTimeout> | undefined;
let timerAt = Number.POSITIVE_INFINITY;
/**
 * The setTimeout the timer came from and its clearTimeout: test fake timers replace the globals,
 * and a deadline watched under them must fire when fake time advances.
 */
let armedWith: typeof setTimeout | undefined;
let clearWith: typeof clearTimeout = clearTimeout;
/** Which arming is current: a timer that could not be cleared (clocks swapped) fires for nothing. */
let generation = 0;

function arm(at: number): void {
  if (timer !== undefined) clearWith(timer);
  const current = ++generation;
  timerAt = at;
  armedWith = setTimeout;
  clearWith = clearTimeout;
  timer = setTimeout(
    () => {
      if (current === generation) onTimer();
    },
    Math.max(0, at - performance.now()),
  );
}

function onTimer(): void {
  timer = undefined;
  timerAt = Number.POSITIVE_INFINITY;
  const now = performance.now();
  let next = Number.POSITIVE_INFINITY;
  for (const entry of watched) {
    if (entry.at <= now) {
      watched.delete(entry);
      entry.fire();
    } else if (entry.at < next) {
      next = entry.at;
    }
  }
  if (next !== Number.POSITIVE_INFINITY) arm(next);
}

/** Calls `fire` once `ms` have passed, unless `unwatch` comes first. */
export function watch(ms: number, fire: () => void): Watched {
  return watchUntil(performance.now() + ms, fire);
}

/** `watch` to a `performance.now()` time the caller already has (one clock read less per call). */
export function watchUntil(at: number, fire: () => void): Watched {
  const entry: Watched = { at, fire };
  watched.add(entry);
  if (entry.at < timerAt || armedWith !== setTimeout) arm(entry.at);
  else if (watched.size === 1) timer?.ref?.();
  return entry;
}

export function unwatch(entry: Watched): void {
  if (watched.delete(entry) && watched.size === 0) timer?.unref?.();
}

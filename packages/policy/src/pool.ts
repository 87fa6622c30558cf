/**
 * Maps an async iterable through an async function with at most `limit` calls in flight, yielding
 * results in input order. Pulling from the source is lazy: a paged listing is read only as fast
 * as the work drains, so memory stays bounded by `limit`.
 */
export async function* mapBounded<T, R>(
  source: AsyncIterable<T>,
  limit: number,
  fn: (item: T) => Promise<R>,
): AsyncIterable<R> {
  const iterator = source[Symbol.asyncIterator]();
  const inFlight: Promise<R>[] = [];
  let done = false;
  try {
    for (;;) {
      while (!done && inFlight.length < limit) {
        const step = await iterator.next();
        if (step.done) {
          done = true;
          break;
        }
        const p = fn(step.value);
        p.catch(() => {}); // awaited below in order; this keeps an early rejection from going unhandled
        inFlight.push(p);
      }
      const next = inFlight.shift();
      if (next === undefined) return;
      yield await next;
    }
  } finally {
    if (!done) await iterator.return?.();
  }
}

/**
 * Runs several async iterables at once and yields their items as they come. Each source's next
 * step reports into one queue; not `Promise.race` over the pending steps, which leaves on a slow
 * source's step a reaction per race, each holding the item a faster source gave that race, until
 * the slow one answers.
 */
export async function* merge<T>(sources: readonly AsyncIterable<T>[]): AsyncIterable<T> {
  const iterators = sources.map((s) => s[Symbol.asyncIterator]());
  type Arrival = { index: number; step: IteratorResult<T> } | { index: number; error: unknown };
  const arrived: Arrival[] = [];
  const pending = new Set<number>();
  let wake: (() => void) | undefined;
  const report = (arrival: Arrival): void => {
    arrived.push(arrival);
    wake?.();
  };
  const pull = (index: number): void => {
    pending.add(index);
    let next: Promise<IteratorResult<T>>;
    try {
      next = Promise.resolve((iterators[index] as AsyncIterator<T>).next());
    } catch (error) {
      report({ index, error });
      return;
    }
    next.then(
      (step) => report({ index, step }),
      (error: unknown) => report({ index, error }),
    );
  };
  for (let i = 0; i < iterators.length; i++) pull(i);
  try {
    while (pending.size > 0) {
      if (arrived.length === 0) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
      const arrival = arrived.shift() as Arrival;
      if ('error' in arrival) throw arrival.error;
      pending.delete(arrival.index);
      if (arrival.step.done) continue;
      pull(arrival.index);
      yield arrival.step.value;
    }
  } finally {
    await Promise.allSettled([...pending].map((i) => iterators[i]?.return?.()));
  }
}

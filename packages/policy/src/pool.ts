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

/** Runs several async iterables at once and yields their items as they come. */
export async function* merge<T>(sources: readonly AsyncIterable<T>[]): AsyncIterable<T> {
  const iterators = sources.map((s) => s[Symbol.asyncIterator]());
  const pending = new Map<number, Promise<{ index: number; step: IteratorResult<T> }>>();
  const pull = (index: number): void => {
    pending.set(
      index,
      (iterators[index] as AsyncIterator<T>).next().then((step) => ({ index, step })),
    );
  };
  for (let i = 0; i < iterators.length; i++) pull(i);
  try {
    while (pending.size > 0) {
      const { index, step } = await Promise.race(pending.values());
      if (step.done) {
        pending.delete(index);
        continue;
      }
      pull(index);
      yield step.value;
    }
  } finally {
    await Promise.allSettled([...pending.keys()].map((i) => iterators[i]?.return?.()));
  }
}

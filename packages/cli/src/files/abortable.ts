/**
 * An async iterable that stops when `signal` aborts: between chunks, and also while a read is
 * waiting (a stdin pipe with nothing to give). The envelope checks the signal only at provider
 * calls, so this is what stops a long encrypt, decrypt or rewrap within a second of Ctrl-C.
 */
export async function* abortable<T>(
  source: AsyncIterable<T>,
  signal: AbortSignal | undefined,
): AsyncGenerator<T> {
  if (signal === undefined) {
    yield* source;
    return;
  }
  const it = source[Symbol.asyncIterator]();
  try {
    for (;;) {
      signal.throwIfAborted();
      const next = await nextOrAbort(it, signal);
      if (next.done === true) return;
      yield next.value;
    }
  } finally {
    // Close the source (a file handle, stdin) without waiting on a read that may never end.
    void it.return?.()?.catch(() => undefined);
  }
}

/**
 * The iterator's next step, or a rejection as soon as `signal` aborts, with a listener of its
 * own that is removed once the step arrives. Not `Promise.race` against one abort promise kept
 * for the whole stream: every race leaves a reaction on that promise holding the race's result,
 * so each chunk the stream ever carried stayed reachable (a 1 GiB encrypt grew to 2 GiB).
 */
function nextOrAbort<T>(it: AsyncIterator<T>, signal: AbortSignal): Promise<IteratorResult<T>> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const settled = (): void => signal.removeEventListener('abort', onAbort);
    let step: Promise<IteratorResult<T>>;
    try {
      step = Promise.resolve(it.next());
    } catch (e) {
      settled();
      reject(e);
      return;
    }
    step.then(
      (r) => {
        settled();
        resolve(r);
      },
      (e: unknown) => {
        settled();
        reject(e);
      },
    );
  });
}

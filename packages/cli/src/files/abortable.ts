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
  // One listener for the whole stream, rejecting the read in progress. Not `Promise.race`
  // against one abort promise: every race leaves a reaction on that promise holding the race's
  // result, so each chunk the stream carried stayed reachable (a 1 GiB encrypt grew to 2 GiB).
  // Nor a listener per read: adding and removing one per chunk kept the garbage collector busy.
  let rejectRead: ((reason: unknown) => void) | undefined;
  const onAbort = (): void => rejectRead?.(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      signal.throwIfAborted();
      const next = await new Promise<IteratorResult<T>>((resolve, reject) => {
        rejectRead = reject;
        it.next().then(resolve, reject);
      });
      rejectRead = undefined;
      if (next.done === true) return;
      yield next.value;
    }
  } finally {
    rejectRead = undefined;
    signal.removeEventListener('abort', onAbort);
    // Close the source (a file handle, stdin) without waiting on a read that may never end.
    void it.return?.()?.catch(() => undefined);
  }
}

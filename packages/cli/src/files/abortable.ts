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
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => undefined);
  try {
    for (;;) {
      signal.throwIfAborted();
      const next = await Promise.race([it.next(), aborted]);
      if (next.done === true) return;
      yield next.value;
    }
  } finally {
    // Close the source (a file handle, stdin) without waiting on a read that may never end.
    void it.return?.()?.catch(() => undefined);
  }
}

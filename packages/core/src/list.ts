/**
 * Listings: a driver's async iterable run so that each `next()` is one attempt under the call
 * policy's deadline and abort, and the listing as a whole emits one audit event when it ends,
 * fails or is left early. Leaving the loop early closes the driver's iterator (its `return()`,
 * so a driver's `finally` releases what it holds) and aborts its signal.
 */
import { assertCapability, type Operation } from './capabilities.js';
import { AuditFailure, type DriverCalls } from './driver-call.js';
import { runWithPolicy } from './policy.js';
import { driverName, type KmsProvider, type ProviderCallOptions } from './provider.js';
import type { CallOptions } from './types.js';

export async function* runListing<T>(
  calls: DriverCalls,
  op: Operation,
  provider: KmsProvider,
  keyUri: string | undefined,
  o: CallOptions | undefined,
  open: (po: ProviderCallOptions) => AsyncIterable<T>,
): AsyncIterable<T> {
  const started = performance.now();
  const spec = { op, provider, keyUri };
  const controller = new AbortController();
  const signal = o?.signal ? AbortSignal.any([o.signal, controller.signal]) : controller.signal;
  let pages = 0;
  let iterator: AsyncIterator<T> | undefined;
  // True while the driver's iterator rests at a yield of ours: the consumer may leave there.
  let suspended = false;
  let audited = false;
  try {
    assertCapability(provider.capabilities, op, driverName(provider), keyUri);
    iterator = open({ signal })[Symbol.asyncIterator]();
    for (;;) {
      const source = iterator;
      const { value: step } = await runWithPolicy(
        () => {
          pages++;
          return source.next();
        },
        { ...calls.settings.policy, maxAttempts: 1 },
        { signal: o?.signal, timeoutMs: o?.timeoutMs },
        { mapError: (e) => calls.mapError(provider, e, keyUri) },
      );
      if (step.done) break;
      suspended = true;
      yield step.value;
      suspended = false;
    }
    audited = true;
    const recorded = calls.emit(spec, started, pages, 'success', undefined, undefined);
    // Bounded by the caller's signal, as a single call's audit wait is (driver-call.ts).
    if (recorded !== undefined) await calls.untilAborted(recorded, { ...spec, options: o }, undefined);
  } catch (e) {
    if (e instanceof AuditFailure) throw e;
    audited = true;
    const error = calls.mapError(provider, e, keyUri);
    const recorded = calls.emit(spec, started, pages, 'failure', undefined, error);
    if (recorded !== undefined) await calls.untilAborted(recorded, { ...spec, options: o }, error);
    throw error;
  } finally {
    // The consumer left at a yield (`break`, `return`, a throw in its loop body): the driver's
    // iterator is closed as `for await` would close it, without waiting on a driver that hangs
    // there, and the listing is audited like any other call.
    if (suspended) closeQuietly(iterator);
    controller.abort();
    if (!audited) {
      const recorded = calls.emit(spec, started, pages, 'success', undefined, undefined);
      if (recorded !== undefined) await calls.untilAborted(recorded, { ...spec, options: o }, undefined);
    }
  }
}

/** `iterator.return()`, whose failure (a throw or a rejection) has nobody left to report to. */
function closeQuietly(iterator: AsyncIterator<unknown> | undefined): void {
  try {
    iterator?.return?.()?.then(undefined, () => {});
  } catch {
    // A driver's return() that throws at once: the listing is over either way.
  }
}

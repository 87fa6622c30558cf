/**
 * Listings: a driver's async iterable run so that each `next()` is one attempt under the call
 * policy's deadline and abort, and the listing as a whole emits one audit event when it ends or
 * fails. Leaving the loop early aborts the driver's iterator.
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
  try {
    assertCapability(provider.capabilities, op, driverName(provider), keyUri);
    const iterator = open({ signal })[Symbol.asyncIterator]();
    for (;;) {
      const { value: step } = await runWithPolicy(
        () => {
          pages++;
          return iterator.next();
        },
        { ...calls.settings.policy, maxAttempts: 1 },
        { signal: o?.signal, timeoutMs: o?.timeoutMs },
        { mapError: (e) => calls.mapError(provider, e, keyUri) },
      );
      if (step.done) break;
      yield step.value;
    }
    const recorded = calls.emit(spec, started, pages, 'success', undefined, undefined);
    // Bounded by the caller's signal, as a single call's audit wait is (driver-call.ts).
    if (recorded !== undefined) await calls.untilAborted(recorded, { ...spec, options: o }, undefined);
  } catch (e) {
    if (e instanceof AuditFailure) throw e;
    const error = calls.mapError(provider, e, keyUri);
    const recorded = calls.emit(spec, started, pages, 'failure', undefined, error);
    if (recorded !== undefined) await calls.untilAborted(recorded, { ...spec, options: o }, error);
    throw error;
  } finally {
    controller.abort();
  }
}

/**
 * Batches: many items under one key. With a driver batch method, the whole request runs under
 * the call policy (retried only when the request as a whole fails retryably) and each item's
 * result is mapped and audited on its own; without one, per-item calls (each its own policy run
 * and audit event), at most BATCH_FALLBACK_CONCURRENCY at a time. A whole-request failure or an
 * abort rejects, after every item has been audited as failed.
 */
import { assertCapability } from './capabilities.js';
import type { ContextOptions } from './client-api.js';
import { allRecorded, type DriverCalls } from './driver-call.js';
import { KeyportError, toKeyportError } from './errors.js';
import { runWithPolicy } from './policy.js';
import { type BatchResult, driverName, type KmsProvider, type ProviderCallOptions } from './provider.js';
import { bytesResult } from './result-shape.js';
import type { CallOptions, EncryptionContext, KeyRef } from './types.js';

/** Items in flight at once when a driver has no batch method and core calls it per item. */
export const BATCH_FALLBACK_CONCURRENCY = 16;

/** What an item's value must look like (result-shape.ts), as for a single call. */
const ITEM_CHECK = {
  encrypt: bytesResult('encrypt', 'ciphertext'),
  decrypt: bytesResult('decrypt', 'plaintext'),
} as const;

export type BatchMethod<I, R> = (
  ref: KeyRef,
  items: readonly I[],
  o: ProviderCallOptions,
) => Promise<BatchResult<R>[]>;

/** The key a batch runs under: `ref` for the driver, `uri` as the caller wrote it. */
export interface BatchTarget {
  readonly ref: KeyRef;
  readonly uri: string;
  readonly provider: KmsProvider;
}

export async function runBatch<
  I extends { readonly context?: EncryptionContext },
  R extends { readonly keyVersion: string | undefined },
>(
  calls: DriverCalls,
  op: 'encrypt' | 'decrypt',
  target: BatchTarget,
  items: readonly I[],
  o: CallOptions | undefined,
  batch: BatchMethod<I, R> | undefined,
  single: (item: I, o: ContextOptions) => Promise<R>,
): Promise<BatchResult<R>[]> {
  const { ref, uri, provider } = target;
  if (items.length === 0) return [];
  const started = performance.now();
  let attempts = 0;
  const recorded: Promise<void>[] = [];
  const audit = (item: I, r: BatchResult<R>): void => {
    const pending = calls.emit(
      { op, provider, keyUri: uri, context: item.context },
      started,
      attempts,
      r.ok ? 'success' : 'failure',
      r.ok ? r.value.keyVersion : undefined,
      r.ok ? undefined : r.error,
    );
    if (pending !== undefined) recorded.push(pending);
  };
  // The items' audit writes, bounded by the caller's signal as a single call's are.
  const recordedOrAborted = (error: KeyportError | undefined): Promise<void> =>
    recorded.length === 0
      ? Promise.resolve()
      : calls.untilAborted(allRecorded(recorded), { op, provider, keyUri: uri, options: o }, error);
  let results: BatchResult<R>[];
  let perItem = false;
  try {
    assertCapability(provider.capabilities, op, driverName(provider), uri);
    perItem = batch === undefined;
    if (batch === undefined) return await eachItem(items, o, single);
    const outcome = await runWithPolicy(
      (signal) => {
        attempts++;
        return batch(ref, items, { signal });
      },
      calls.settings.policy,
      { signal: o?.signal, timeoutMs: o?.timeoutMs },
      {
        ...(calls.settings.random ? { random: calls.settings.random } : {}),
        mapError: (e) => calls.mapError(provider, e, uri),
      },
    );
    const answered: unknown = outcome.value;
    if (!Array.isArray(answered)) {
      throw new KeyportError('Internal', `the provider answered a ${op} batch without a list of results`);
    }
    results = items.map((_, i) => itemResult(calls, op, provider, uri, answered[i]));
  } catch (e) {
    const error = calls.mapError(provider, e, uri);
    // Per-item calls audited themselves; otherwise the request failed as a whole.
    if (!perItem) for (const item of items) audit(item, { ok: false, error });
    await recordedOrAborted(error);
    throw error;
  }
  for (const [i, item] of items.entries()) audit(item, results[i] as BatchResult<R>);
  await recordedOrAborted(undefined);
  return results;
}

/** An item's result as the caller sees it: errors mapped by the driver, a missing result an error. */
function itemResult<R>(
  calls: DriverCalls,
  op: 'encrypt' | 'decrypt',
  provider: KmsProvider,
  keyUri: string,
  answer: unknown,
): BatchResult<R> {
  const internal = (why: string): BatchResult<R> => ({
    ok: false,
    error: new KeyportError('Internal', why, { provider: driverName(provider), keyUri }),
  });
  if (answer === undefined) return internal('the provider returned fewer batch results than items');
  const r = answer as BatchResult<R>;
  if (typeof answer !== 'object' || answer === null || typeof r.ok !== 'boolean')
    return internal(`the provider answered a ${op} batch item without { ok, value | error }`);
  if (!r.ok) return { ok: false, error: calls.mapError(provider, r.error, keyUri) };
  try {
    ITEM_CHECK[op](r.value);
  } catch (e) {
    return { ok: false, error: calls.mapError(provider, e, keyUri) };
  }
  return r;
}

/** The fallback: per-item calls with bounded concurrency; an abort still rejects the whole batch. */
async function eachItem<I extends { readonly context?: EncryptionContext }, R>(
  items: readonly I[],
  o: CallOptions | undefined,
  run: (item: I, o: ContextOptions) => Promise<R>,
): Promise<BatchResult<R>[]> {
  const results: BatchResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      const item = items[i] as I;
      const io: ContextOptions = {
        ...(o?.signal !== undefined ? { signal: o.signal } : {}),
        ...(o?.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
        ...(item.context !== undefined ? { context: item.context } : {}),
      };
      try {
        results[i] = { ok: true, value: await run(item, io) };
      } catch (e) {
        results[i] = { ok: false, error: toKeyportError(e) };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(BATCH_FALLBACK_CONCURRENCY, items.length) }, worker));
  if (o?.signal?.aborted)
    throw new KeyportError('Aborted', 'the operation was aborted', { retryable: false });
  return results;
}

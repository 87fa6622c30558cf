/**
 * Wrapping many data keys for one key with a provider's batch API (Vault/OpenBao transit
 * `batch_input`): a `Recipient` (what the envelope's rewrap and open call) whose wraps and
 * unwraps are queued and sent as one `Keyport.encryptBatch` / `decryptBatch` call per group.
 *
 * Grouping is a group commit, like the journal's fsync: while one request of a kind is on the
 * wire, new items wait; when it returns, everything that arrived meanwhile goes out as the next
 * request. An idle batcher adds no latency, a busy one sends batches as large as the load (at most
 * `maxItems`). Retries, deadline, abort, error mapping and the one-audit-event-per-item trail are
 * core's (`Keyport.encryptBatch`), so the trail is the same as without batching. EDKs are
 * byte-compatible with `kmsRecipient`'s (`keyport:hcvault`, the URI pinned to the version that
 * wrapped), so anything that opens the one opens the other.
 */
import {
  type AuditSink,
  type BatchResult,
  type EncryptionContext,
  type KeyOperations,
  Keyport,
  KeyportError,
  type KeyRef,
  type KmsProvider,
  keyportTracingActive,
  toKeyportError,
  withKeyportSpan,
  withKeyVersion,
} from '@keyport/core';
import { type EncryptedDataKey, kmsRecipient, type Recipient } from '@keyport/envelope';

/** A provider that implements core's optional batch methods. */
export type BatchingProvider = KmsProvider & Required<Pick<KmsProvider, 'encryptBatch' | 'decryptBatch'>>;

export function isBatchingProvider(p: unknown): p is BatchingProvider {
  const c = p as Partial<BatchingProvider> | undefined;
  return typeof c?.encryptBatch === 'function' && typeof c.decryptBatch === 'function';
}

export interface BatchStats {
  /** Batch calls made (each one provider request where the provider batches, however many items). */
  encryptRequests: number;
  decryptRequests: number;
  items: number;
  largestBatch: number;
}

interface BatchItem {
  readonly data: Uint8Array;
  readonly context: EncryptionContext;
}

interface Pending<T> {
  readonly item: BatchItem;
  readonly resolve: (value: T) => void;
  readonly reject: (error: unknown) => void;
}

export interface BatchRecipientOptions {
  readonly uri: string;
  /** The client the batches run through: its call policy and its audit sinks. */
  readonly keys?: KeyOperations;
  /**
   * Without `keys`: a provider with batch methods, run through a `Keyport` of its own (default
   * call policy, `audit` as its sinks).
   */
  readonly provider?: KmsProvider;
  /** At most this many items per request (default 256; transit has no fixed limit). */
  readonly maxItems?: number;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
  /** With `provider` only: sinks that get one event per item, as Keyport writes for single calls. */
  readonly audit?: readonly AuditSink[];
}

class Lane<T> {
  queue: Array<Pending<T>> = [];
  busy = false;
}

interface Wrapped {
  readonly ciphertext: Uint8Array;
  readonly keyVersion: string | undefined;
}

export class TransitBatchRecipient implements Recipient {
  readonly id: string;
  readonly stats: BatchStats = { encryptRequests: 0, decryptRequests: 0, items: 0, largestBatch: 0 };
  private readonly plain: Recipient;
  private readonly keys: KeyOperations;
  private readonly enc = new Lane<Wrapped>();
  private readonly dec = new Lane<Uint8Array>();
  /** Encrypt under the key as named (a pinned `?version=` is honoured); decrypt needs no version. */
  private readonly encryptRef: KeyRef;
  private readonly decryptRef: KeyRef;

  constructor(private readonly o: BatchRecipientOptions) {
    this.plain = kmsRecipient(o.uri);
    this.id = this.plain.id;
    this.encryptRef = { uri: o.uri };
    this.decryptRef = { uri: withKeyVersion(o.uri, undefined) };
    if (o.keys !== undefined) this.keys = o.keys;
    else if (o.provider !== undefined) {
      this.keys = new Keyport({
        providers: [o.provider],
        ...(o.audit !== undefined ? { audit: o.audit } : {}),
      });
    } else throw new KeyportError('InvalidArgument', 'a batch recipient needs `keys` or `provider`');
  }

  matches(edk: EncryptedDataKey): boolean {
    return this.plain.matches(edk);
  }

  async wrap(dataKey: Uint8Array, context: EncryptionContext): Promise<EncryptedDataKey> {
    const r = await this.enqueue(this.enc, { data: dataKey, context }, (g) => this.encrypt(g));
    return {
      providerId: 'keyport:hcvault',
      providerInfo: new TextEncoder().encode(withKeyVersion(this.o.uri, r.keyVersion)),
      ciphertext: r.ciphertext,
    };
  }

  unwrap(edk: EncryptedDataKey, context: EncryptionContext): Promise<Uint8Array> {
    return this.enqueue(this.dec, { data: edk.ciphertext, context }, (g) => this.decrypt(g));
  }

  private enqueue<T>(
    lane: Lane<T>,
    item: BatchItem,
    send: (items: readonly BatchItem[]) => Promise<BatchResult<T>[]>,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      lane.queue.push({ item, resolve, reject });
      // setImmediate: items queued in the same turn go out together even when the lane is idle.
      if (!lane.busy) setImmediate(() => void this.pump(lane, send));
    });
  }

  private async pump<T>(
    lane: Lane<T>,
    send: (items: readonly BatchItem[]) => Promise<BatchResult<T>[]>,
  ): Promise<void> {
    if (lane.busy) return;
    lane.busy = true;
    try {
      while (lane.queue.length > 0) {
        const group = lane.queue.splice(0, this.o.maxItems ?? 256);
        await this.settle(group, send);
      }
    } finally {
      lane.busy = false;
    }
  }

  private callOptions(): { signal?: AbortSignal; timeoutMs?: number } {
    return {
      ...(this.o.signal !== undefined ? { signal: this.o.signal } : {}),
      ...(this.o.timeoutMs !== undefined ? { timeoutMs: this.o.timeoutMs } : {}),
    };
  }

  private async encrypt(items: readonly BatchItem[]): Promise<BatchResult<Wrapped>[]> {
    this.stats.encryptRequests++;
    const batch = items.map((it) => ({ plaintext: it.data, context: it.context }));
    const call = () => this.keys.encryptBatch(this.encryptRef, batch, this.callOptions());
    return keyportTracingActive()
      ? withKeyportSpan(
          'keyport migrate.batch',
          { 'keyport.batch.operation': 'encrypt', 'keyport.batch.size': batch.length },
          call,
        )
      : call();
  }

  private async decrypt(items: readonly BatchItem[]): Promise<BatchResult<Uint8Array>[]> {
    this.stats.decryptRequests++;
    const batch = items.map((it) => ({ ciphertext: it.data, context: it.context }));
    const call = () => this.keys.decryptBatch(this.decryptRef, batch, this.callOptions());
    const results = keyportTracingActive()
      ? await withKeyportSpan(
          'keyport migrate.batch',
          { 'keyport.batch.operation': 'decrypt', 'keyport.batch.size': batch.length },
          call,
        )
      : await call();
    return results.map((r) => (r.ok ? { ok: true, value: r.value.plaintext } : r));
  }

  /** One batch call for the group; each item settles with its own result. */
  private async settle<T>(
    group: Array<Pending<T>>,
    send: (items: readonly BatchItem[]) => Promise<BatchResult<T>[]>,
  ): Promise<void> {
    let results: BatchResult<T>[];
    try {
      results = await send(group.map((g) => g.item));
    } catch (e) {
      const error = toKeyportError(e);
      for (const g of group) g.reject(error);
      return;
    }
    this.stats.items += group.length;
    this.stats.largestBatch = Math.max(this.stats.largestBatch, group.length);
    group.forEach((g, i) => {
      const r = results[i];
      if (r?.ok === true) g.resolve(r.value);
      else {
        g.reject(
          r?.error ??
            new KeyportError('Internal', 'the batch returned fewer results than items', {
              keyUri: this.o.uri,
            }),
        );
      }
    });
  }
}

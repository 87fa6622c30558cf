/**
 * Wrapping many data keys for one Vault/OpenBao transit key with `batch_input`: a `Recipient`
 * (what the envelope's rewrap and open call) whose wraps and unwraps are queued and sent as one
 * `encryptBatch` / `decryptBatch` request per group.
 *
 * Grouping is a group commit, like the journal's fsync: while one request of a kind is on the
 * wire, new items wait; when it returns, everything that arrived meanwhile goes out as the next
 * request. An idle batcher adds no latency, a busy one sends batches as large as the load (at most
 * `maxItems`). Each request runs under core's retry policy (retryable codes, backoff, deadline,
 * abort), and each item still gets its own audit event, so the trail is the same as without
 * batching. EDKs are byte-compatible with `kmsRecipient`'s (`keyport:hcvault`, the URI pinned to
 * the version that wrapped), so anything that opens the one opens the other.
 */
import {
  type AuditEvent,
  type AuditSink,
  contextDigest,
  contextKeys,
  DEFAULT_RETRY_POLICY,
  type EncryptionContext,
  KeyportError,
  type KeyRef,
  runWithPolicy,
  toKeyportError,
  withKeyVersion,
} from '@keyport/core';
import { type EncryptedDataKey, kmsRecipient, type Recipient } from '@keyport/envelope';

type Outcome<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: KeyportError };

interface BatchItem {
  readonly data: Uint8Array;
  readonly context?: EncryptionContext;
}

/** What `@keyport/vault-transit`'s `VaultTransitProvider` offers, structurally. */
export interface BatchingProvider {
  readonly name: string;
  encryptBatch(
    ref: KeyRef,
    items: readonly BatchItem[],
    o?: { signal?: AbortSignal },
  ): Promise<Array<Outcome<{ ciphertext: Uint8Array; keyVersion: string }>>>;
  decryptBatch(
    ref: KeyRef,
    items: readonly BatchItem[],
    o?: { signal?: AbortSignal },
  ): Promise<Array<Outcome<{ plaintext: Uint8Array; keyVersion: string }>>>;
  mapError?(error: unknown): KeyportError | undefined;
}

export function isBatchingProvider(p: unknown): p is BatchingProvider {
  const c = p as Partial<BatchingProvider> | undefined;
  return typeof c?.encryptBatch === 'function' && typeof c.decryptBatch === 'function';
}

export interface BatchStats {
  /** Requests sent (each one provider call, however many items). */
  encryptRequests: number;
  decryptRequests: number;
  items: number;
  largestBatch: number;
}

interface Pending<T> {
  readonly item: BatchItem;
  readonly resolve: (value: T) => void;
  readonly reject: (error: unknown) => void;
}

type Kind = 'encrypt' | 'decrypt';

export interface BatchRecipientOptions {
  readonly uri: string;
  readonly provider: BatchingProvider;
  /** At most this many items per request (default 256; transit has no fixed limit). */
  readonly maxItems?: number;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
  /** Sinks that get one event per item, as Keyport would write for single calls. */
  readonly audit?: readonly AuditSink[];
}

class Lane<T> {
  queue: Array<Pending<T>> = [];
  busy = false;
}

export class TransitBatchRecipient implements Recipient {
  readonly id: string;
  readonly stats: BatchStats = { encryptRequests: 0, decryptRequests: 0, items: 0, largestBatch: 0 };
  private readonly plain: Recipient;
  private readonly enc = new Lane<{ ciphertext: Uint8Array; keyVersion: string }>();
  private readonly dec = new Lane<{ plaintext: Uint8Array; keyVersion: string }>();
  /** Encrypt under the key as named (a pinned `?version=` is honoured); decrypt needs no version. */
  private readonly encryptRef: KeyRef;
  private readonly decryptRef: KeyRef;

  constructor(private readonly o: BatchRecipientOptions) {
    this.plain = kmsRecipient(o.uri);
    this.id = this.plain.id;
    this.encryptRef = { uri: o.uri };
    this.decryptRef = { uri: withKeyVersion(o.uri, undefined) };
  }

  matches(edk: EncryptedDataKey): boolean {
    return this.plain.matches(edk);
  }

  async wrap(dataKey: Uint8Array, context: EncryptionContext): Promise<EncryptedDataKey> {
    const r = await this.enqueue(this.enc, 'encrypt', { data: dataKey, context });
    return {
      providerId: 'keyport:hcvault',
      providerInfo: new TextEncoder().encode(withKeyVersion(this.o.uri, r.keyVersion)),
      ciphertext: r.ciphertext,
    };
  }

  async unwrap(edk: EncryptedDataKey, context: EncryptionContext): Promise<Uint8Array> {
    const r = await this.enqueue(this.dec, 'decrypt', { data: edk.ciphertext, context });
    return r.plaintext;
  }

  private enqueue<T extends { keyVersion: string }>(lane: Lane<T>, kind: Kind, item: BatchItem): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      lane.queue.push({ item, resolve, reject });
      // setImmediate: items queued in the same turn go out together even when the lane is idle.
      if (!lane.busy) setImmediate(() => void this.pump(lane, kind));
    });
  }

  private async pump<T extends { keyVersion: string }>(lane: Lane<T>, kind: Kind): Promise<void> {
    if (lane.busy) return;
    lane.busy = true;
    try {
      while (lane.queue.length > 0) {
        const group = lane.queue.splice(0, this.o.maxItems ?? 256);
        await this.send(group, kind);
      }
    } finally {
      lane.busy = false;
    }
  }

  private request(kind: Kind, items: readonly BatchItem[], signal: AbortSignal) {
    const p = this.o.provider;
    if (kind === 'encrypt') {
      this.stats.encryptRequests++;
      return p.encryptBatch(this.encryptRef, items, { signal });
    }
    this.stats.decryptRequests++;
    return p.decryptBatch(this.decryptRef, items, { signal });
  }

  private async send<T extends { keyVersion: string }>(group: Array<Pending<T>>, kind: Kind): Promise<void> {
    const started = performance.now();
    const items = group.map((g) => g.item);
    const provider = this.o.provider;
    let attempts = 0;
    try {
      const outcome = await runWithPolicy<ReadonlyArray<Outcome<{ keyVersion: string }>>>(
        (signal) => {
          attempts++;
          return this.request(kind, items, signal);
        },
        DEFAULT_RETRY_POLICY,
        { signal: this.o.signal, timeoutMs: this.o.timeoutMs },
        { mapError: (e) => provider.mapError?.(e) ?? toKeyportError(e) },
      );
      this.stats.items += group.length;
      this.stats.largestBatch = Math.max(this.stats.largestBatch, group.length);
      group.forEach((g, i) => {
        const r = outcome.value[i];
        const error =
          r === undefined
            ? new KeyportError('Internal', 'transit returned fewer batch results than items', {
                provider: provider.name,
                keyUri: this.o.uri,
              })
            : r.ok
              ? undefined
              : r.error;
        this.audit(
          kind,
          g.item.context,
          started,
          attempts,
          r?.ok === true ? r.value.keyVersion : undefined,
          error,
        );
        if (r?.ok === true) g.resolve(r.value as T);
        else g.reject(error);
      });
    } catch (e) {
      const error = toKeyportError(e);
      for (const g of group) {
        this.audit(kind, g.item.context, started, attempts, undefined, error);
        g.reject(error);
      }
    }
  }

  private audit(
    op: Kind,
    context: EncryptionContext | undefined,
    started: number,
    attempts: number,
    keyVersion: string | undefined,
    error: KeyportError | undefined,
  ): void {
    const sinks = this.o.audit ?? [];
    if (sinks.length === 0) return;
    const event: AuditEvent = {
      ts: new Date().toISOString(),
      op,
      provider: this.o.provider.name,
      keyUri: this.o.uri,
      keyVersion,
      outcome: error === undefined ? 'success' : 'failure',
      errorCode: error?.code,
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
      attempts,
      requestId: error?.requestId,
      contextKeys: contextKeys(context),
      contextDigest: context === undefined ? undefined : contextDigest(context),
    };
    for (const sink of sinks) {
      try {
        const pending = sink.write(event);
        if (pending instanceof Promise) pending.catch(() => undefined);
      } catch {
        // audit failures never fail the operation (as in Keyport)
      }
    }
  }
}

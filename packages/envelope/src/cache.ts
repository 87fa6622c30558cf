/**
 * A data-key cache for seal and open, shared by both (keys are namespaced).
 *
 * - Each entry is used for at most `maxMessages` messages, `maxBytes` plaintext bytes and
 *   `maxAgeMs` milliseconds; the cache holds at most `maxEntries` entries (least recently
 *   used evicted first).
 * - Fills are single-flight: concurrent misses on one key wait for one provider call.
 * - An entry's data key is zeroed when it is evicted. Callers use the materials inside a
 *   synchronous callback, so an eviction can never zero a key that is being used.
 */
import { KeyportError } from '@keyport/core';
import { zeroDataKey } from './kdf.js';
import { checkUnknown } from './known-options.js';

export interface DataKeyCacheOptions {
  /** How long one data key may be reused, in milliseconds. */
  readonly maxAgeMs: number;
  /** Messages per data key (default 2^32). */
  readonly maxMessages?: number;
  /** Plaintext bytes per data key (default 2^53 - 1). */
  readonly maxBytes?: number;
  /** Entries held at once (default 1000). */
  readonly maxEntries?: number;
}

export interface CacheStats {
  /** Fills started: provider round trips made on behalf of the cache. */
  readonly fills: number;
  readonly hits: number;
  readonly evictions: number;
}

interface Entry {
  readonly value: { readonly dataKey: Uint8Array };
  readonly createdAt: number;
  messages: number;
  bytes: number;
}

/**
 * A positive integer. Fractions are refused: `maxEntries: 0.5` evicted every entry as it was
 * inserted, and every seal then refilled without end (one provider call after another).
 */
function positive(name: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (!(typeof v === 'number' && Number.isSafeInteger(v) && v > 0)) {
    throw new KeyportError('InvalidArgument', `${name} must be a positive integer`);
  }
  return v;
}

const CACHE_OPTION_NAMES = [
  'maxAgeMs',
  'maxMessages',
  'maxBytes',
  'maxEntries',
] as const satisfies ReadonlyArray<keyof DataKeyCacheOptions>;

export class DataKeyCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly maxAgeMs: number;
  private readonly maxMessages: number;
  private readonly maxBytes: number;
  private readonly maxEntries: number;
  private counters = { fills: 0, hits: 0, evictions: 0 };
  /** The key last moved to the end of `entries` (the most recently used), if still there. */
  private newest: string | undefined;

  constructor(options: DataKeyCacheOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new KeyportError('InvalidArgument', 'DataKeyCache needs options: { maxAgeMs, ... }');
    }
    // A misspelt limit (`maxMessage`) would leave a data key reused up to the default 2^32 times.
    checkUnknown(options, 'DataKeyCache options', CACHE_OPTION_NAMES);
    this.maxAgeMs = positive('maxAgeMs', options.maxAgeMs ?? -1, 0);
    this.maxMessages = positive('maxMessages', options.maxMessages, 2 ** 32);
    this.maxBytes = positive('maxBytes', options.maxBytes, Number.MAX_SAFE_INTEGER);
    this.maxEntries = positive('maxEntries', options.maxEntries, 1000);
  }

  get stats(): CacheStats {
    return { ...this.counters };
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * Runs `use` on cached materials for `key`, charging one message and `cost` bytes; fills the
   * entry with `fill` (once, however many callers wait) when it is missing or used up.
   */
  async acquire<M extends { readonly dataKey: Uint8Array }, T>(
    key: string,
    cost: number,
    fill: () => Promise<M>,
    use: (materials: M) => T,
  ): Promise<T> {
    if (cost > this.maxBytes) {
      // Larger than one entry may ever carry: bypass the cache.
      const m = await fill();
      try {
        return use(m);
      } finally {
        zeroDataKey(m.dataKey);
      }
    }
    for (;;) {
      const e = this.take(key, cost);
      if (e !== undefined) return use(e.value as M);
      const pending = this.inflight.get(key);
      if (pending !== undefined) {
        try {
          await pending;
        } catch (error) {
          // The filler's own abort says nothing about the provider: this caller (whose signal
          // may be fine) fills for itself rather than fail with another call's `Aborted`. Other
          // failures reach every waiter, so a provider that is down is asked once, not N times.
          if (!(error instanceof KeyportError && error.code === 'Aborted')) throw error;
        }
        continue;
      }
      this.counters.fills++;
      // The filler is charged and served in the step that inserts its entry: were it to take the
      // entry after its own `await`, another key's fill settling in between could evict (and
      // zero) it first when `maxEntries` is small, and the filler would fill again — n
      // concurrent keys over one entry made n(n+1)/2 provider calls.
      let served: { readonly value: T } | { readonly error: unknown } | undefined;
      const p = fill().then((value) => {
        const entry = this.insert(key, value);
        this.charge(entry, cost);
        try {
          served = { value: use(value) };
        } catch (error) {
          served = { error };
        }
      });
      this.inflight.set(key, p);
      try {
        await p;
      } finally {
        this.inflight.delete(key);
      }
      const s = served as NonNullable<typeof served>;
      if ('error' in s) throw s.error;
      return s.value;
    }
  }

  /**
   * `acquire` without waiting: runs `use` on the cached materials for `key` and returns its
   * result when a usable entry is there, or returns undefined (nothing charged) when a fill
   * would be needed. Saves a cache hit the promise round trips of `acquire`.
   */
  tryAcquire<M extends { readonly dataKey: Uint8Array }, T>(
    key: string,
    cost: number,
    use: (materials: M) => T,
  ): T | undefined {
    if (cost > this.maxBytes) return undefined;
    const e = this.take(key, cost);
    return e === undefined ? undefined : use(e.value as M);
  }

  /** The entry for `key`, charged one message and `cost` bytes, if it can carry them. */
  private take(key: string, cost: number): Entry | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (!this.usable(e, cost)) {
      this.evict(key);
      return undefined;
    }
    this.charge(e, cost);
    if (this.newest !== key) {
      // Most recently used last; a run of hits on one key skips the reinsertion.
      this.entries.delete(key);
      this.entries.set(key, e);
      this.newest = key;
    }
    return e;
  }

  /** One message and `cost` bytes against `e` (counted as a hit, as every use of an entry is). */
  private charge(e: Entry, cost: number): void {
    e.messages++;
    e.bytes += cost;
    this.counters.hits++;
  }

  private usable(e: Entry, cost: number): boolean {
    return (
      Date.now() - e.createdAt < this.maxAgeMs &&
      e.messages < this.maxMessages &&
      e.bytes + cost <= this.maxBytes
    );
  }

  /** Inserts a fresh entry (the newest, so never the one the size limit evicts here). */
  private insert(key: string, value: { readonly dataKey: Uint8Array }): Entry {
    this.evict(key);
    const entry: Entry = { value, createdAt: Date.now(), messages: 0, bytes: 0 };
    this.entries.set(key, entry);
    this.newest = key;
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.evict(oldest);
    }
    return entry;
  }

  private evict(key: string): void {
    const e = this.entries.get(key);
    if (e === undefined) return;
    zeroDataKey(e.value.dataKey);
    this.entries.delete(key);
    if (this.newest === key) this.newest = undefined;
    this.counters.evictions++;
  }

  /** Drops (and zeroes) every entry. */
  clear(): void {
    for (const key of [...this.entries.keys()]) this.evict(key);
  }
}

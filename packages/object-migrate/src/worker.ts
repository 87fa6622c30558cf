/**
 * One shard's worker: stream the prefix's listing, keep the objects this shard owns, migrate
 * each as it is listed (a few at a time, at most `maxRps` storage calls a second), and keep the
 * shard's journal current. Memory is bounded by the listing's page and the objects in flight,
 * whatever the shard's size. A worker killed at any point and started again lists again and lets
 * each object's header decide: nothing is lost, nothing is wrapped twice.
 */
import { randomUUID } from 'node:crypto';
import {
  checkBoolean,
  checkDeadlineMs,
  checkFunction,
  checkInteger,
  checkOptions,
  checkSignal,
  checkString,
  type EncryptionContext,
  invalidArgument,
  type KeyOperations,
  KeyportError,
  toKeyportError,
} from '@keyport/core';
import { kmsRecipient } from '@keyport/envelope';
import {
  fileJournal,
  JOURNAL_FORMAT,
  type JournalSink,
  type JournalState,
  JournalTakenError,
  MAX_LISTED_FAILURES,
  objectJournal,
} from './journal.js';
import { type ObjectLocation, objectLocation, type StoreEndpoints } from './location.js';
import { checkReproducedContext, type MigrateObjectOptions, migrateObject } from './migrate-object.js';
import { checkShard, MAX_SHARDS, type Shard, shardOf } from './shard.js';
import type { BeforeRequest, ObjectEntry, ObjectStore } from './store.js';
import { CallStats, isPassing, MAX_MAX_RPS, MIN_MAX_RPS, TokenBucket } from './throttle.js';

export type VerifyMode = 'none' | 'all' | { readonly sample: number };

export interface RunShardOptions {
  /** `s3://bucket/prefix`, `azblob://account/container/prefix` or `gs://bucket/prefix`, or a parsed location. */
  readonly location: string | ObjectLocation;
  readonly endpoints?: StoreEndpoints;
  readonly from: string;
  readonly to: string;
  readonly keys?: KeyOperations;
  readonly shard?: Shard;
  /** Journal objects under this prefix in the same bucket (default `<prefix>.keyport-migrate/`). */
  readonly journalPrefix?: string;
  /** Or journal files in this directory instead. */
  readonly journalDir?: string;
  /** Storage calls per second for this worker (token bucket). Default unlimited. */
  readonly maxRps?: number;
  /** Objects in flight at once. Default 8. */
  readonly concurrency?: number;
  readonly verify?: VerifyMode;
  readonly keepSource?: boolean;
  /**
   * Context pairs the objects authenticate without storing them (sealed with
   * `contextNotStored`): given to every object's rewrap and verification (`migrateObject`).
   * Never written anywhere: not to the journal, the objects or their metadata. An object bound
   * to other pairs, or to none, fails alone (`InvalidCiphertext`) and is left as it was; a run
   * with its pairs (or without any) migrates it later.
   */
  readonly reproducedContext?: EncryptionContext;
  /** How often the journal is written while running, ms. Default 1000. */
  readonly journalEveryMs?: number;
  readonly signal?: AbortSignal;
  /** Deadline of each KMS call, in milliseconds (passed to `keys` as `timeoutMs`). */
  readonly timeoutMs?: number;
  readonly onProgress?: (state: Readonly<JournalState>) => void;
  /** Test seam passed to each object's migration. */
  readonly beforeWrite?: MigrateObjectOptions['beforeWrite'];
}

export type ShardReport = JournalState;

/** Bounds of the numeric options: what the token bucket and Node's timers can honour. */
export const MAX_CONCURRENCY = 64;
export { MAX_MAX_RPS, MIN_MAX_RPS };

const RUN_SHARD_OPTIONS = {
  location: true,
  endpoints: true,
  from: true,
  to: true,
  keys: true,
  shard: true,
  journalPrefix: true,
  journalDir: true,
  maxRps: true,
  concurrency: true,
  verify: true,
  keepSource: true,
  reproducedContext: true,
  journalEveryMs: true,
  signal: true,
  timeoutMs: true,
  onProgress: true,
  beforeWrite: true,
} as const;

function checkVerify(value: unknown): VerifyMode {
  if (value === 'none' || value === 'all') return value;
  if (typeof value === 'object' && value !== null) {
    const v = checkOptions(value, 'options.verify', { sample: true });
    return { sample: checkInteger(v.sample, 'options.verify.sample', 1, Number.MAX_SAFE_INTEGER) };
  }
  throw invalidArgument('options.verify', "expected 'none', 'all' or { sample: N }");
}

/**
 * Every option checked before anything is read or written: a number that is NaN, infinite,
 * fractional or out of range, a string where a number belongs, an accessor, an unknown (or
 * misspelt) option would otherwise quietly change the run — no lanes, no rate limit, no
 * verification, a shard that owns nothing — and report it finished. Returns a prototype-free
 * copy read once, so a getter cannot answer differently later.
 */
function checkRunShardOptions(value: unknown): RunShardOptions {
  const o = checkOptions(value, 'options', RUN_SHARD_OPTIONS);
  const location = o.location;
  if (typeof location !== 'string') {
    const l =
      typeof location === 'object' && location !== null ? (location as Partial<ObjectLocation>) : undefined;
    if (l === undefined || typeof l.prefix !== 'string' || typeof l.store !== 'object' || l.store === null)
      throw invalidArgument('options.location', 'expected a location URI or { store, prefix }');
  }
  if (o.endpoints !== undefined && (typeof o.endpoints !== 'object' || o.endpoints === null))
    throw invalidArgument('options.endpoints', 'expected an object');
  const from = checkString(o.from, 'options.from', { min: 1 });
  const to = checkString(o.to, 'options.to', { min: 1 });
  // The recipients parse the URIs: a malformed one is refused here rather than once per object.
  if (kmsRecipient(from).id === kmsRecipient(to).id)
    throw invalidArgument('options.to', 'the source and target name the same key');
  if (o.keys !== undefined && (typeof o.keys !== 'object' || o.keys === null))
    throw invalidArgument('options.keys', 'expected a Keyport client');
  if (o.shard !== undefined) {
    const sh = checkOptions(o.shard, 'options.shard', { index: true, count: true });
    const count = checkInteger(sh.count, 'options.shard.count', 1, MAX_SHARDS);
    o.shard = checkShard(checkInteger(sh.index, 'options.shard.index', 0, MAX_SHARDS - 1), count);
  }
  if (o.journalPrefix !== undefined) checkString(o.journalPrefix, 'options.journalPrefix', { max: 1024 });
  if (o.journalDir !== undefined) checkString(o.journalDir, 'options.journalDir', { min: 1 });
  if (o.maxRps !== undefined) {
    const r = o.maxRps;
    if (typeof r !== 'number' || !(r === Number.POSITIVE_INFINITY || (r >= MIN_MAX_RPS && r <= MAX_MAX_RPS)))
      throw invalidArgument(
        'options.maxRps',
        `expected a number from ${MIN_MAX_RPS} to ${MAX_MAX_RPS}, or Infinity`,
      );
  }
  if (o.concurrency !== undefined) checkInteger(o.concurrency, 'options.concurrency', 1, MAX_CONCURRENCY);
  if (o.verify !== undefined) o.verify = checkVerify(o.verify);
  if (o.keepSource !== undefined) checkBoolean(o.keepSource, 'options.keepSource');
  // Checked before the journal is taken: a malformed map would otherwise fail every object.
  const reproduced = checkReproducedContext(o.reproducedContext, 'options.reproducedContext');
  if (reproduced === undefined) delete o.reproducedContext;
  else o.reproducedContext = reproduced;
  if (o.journalEveryMs !== undefined) checkDeadlineMs(o.journalEveryMs, 'options.journalEveryMs');
  if (o.timeoutMs !== undefined) checkDeadlineMs(o.timeoutMs, 'options.timeoutMs');
  if (o.signal !== undefined) checkSignal(o.signal, 'options.signal');
  if (o.onProgress !== undefined) checkFunction(o.onProgress, 'options.onProgress');
  if (o.beforeWrite !== undefined) checkFunction(o.beforeWrite, 'options.beforeWrite');
  return o as unknown as RunShardOptions;
}

/** The caller's abort, typed: its reason may be anything (a string, an Error of theirs). */
function abortedError(signal: AbortSignal): KeyportError {
  const reason: unknown = signal.reason;
  if (reason instanceof KeyportError && reason.code === 'Aborted') return reason;
  return new KeyportError('Aborted', 'the migration was aborted', { retryable: false, cause: reason });
}

export const DEFAULT_JOURNAL_DIR = '.keyport-migrate/';

/** How long the journal write that records an aborted run's progress may take. */
export const JOURNAL_WRITE_AFTER_ABORT_MS = 5_000;

/**
 * A store whose requests wait for the token bucket and are counted per provider: each operation
 * takes a token before it starts (its first request), and each further request the store
 * reports through `beforeRequest` takes one more (a read is two: the object and its tags or its
 * metadata, three on Azure with the access tier; an upload one per part besides its start and end). A store that reports none (a
 * caller's own) counts one call per operation.
 */
function metered(store: ObjectStore, bucket: TokenBucket, stats: CallStats): ObjectStore {
  const p = store.provider;
  const operation = async (signal: AbortSignal | undefined): Promise<BeforeRequest> => {
    await bucket.take(signal);
    stats.call(p);
    let paid = true;
    return async () => {
      if (paid) {
        paid = false;
        return;
      }
      await bucket.take(signal);
      stats.call(p);
    };
  };
  return {
    provider: p,
    location: store.location,
    list(prefix, signal, beforePage) {
      // Every page request is a call, however few entries it brings (an empty page included).
      return store.list(prefix, signal, async () => {
        await bucket.take(signal);
        stats.call(p);
        await beforePage?.();
      });
    },
    async get(key, signal) {
      return store.get(key, signal, await operation(signal));
    },
    async put(key, body, options) {
      return store.put(key, body, { ...options, beforeRequest: await operation(options?.signal) });
    },
    async delete(key, signal) {
      return store.delete(key, signal, await operation(signal));
    },
  };
}

/** Key operations counted per key scheme (`aws-kms`, `local`, ...), throttling included. */
function countedKeys(
  keys: KeyOperations | undefined,
  stats: CallStats,
  scheme: (uri: unknown) => string,
): KeyOperations | undefined {
  if (keys === undefined) return undefined;
  return new Proxy(keys, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        const provider = `kms:${scheme(args[0])}`;
        stats.call(provider);
        const out = (v as (...a: unknown[]) => unknown).apply(target, args);
        if (out instanceof Promise) {
          return out.catch((e: unknown) => {
            if (e instanceof KeyportError && e.code === 'Throttled') stats.throttled(provider);
            throw e;
          });
        }
        return out;
      };
    },
  });
}

const schemeOf = (uri: unknown): string =>
  typeof uri === 'string' && /^[a-z][a-z0-9+.-]*:\/\//.test(uri) ? (uri.split(':')[0] as string) : 'key';

/**
 * This shard's object count, from a listing of its own (keys are counted, not kept): what a
 * uniform sample of N objects needs before the first object is migrated. It costs one listing
 * call per 1,000 objects, against several calls per object for the migration itself.
 */
async function countShard(
  store: ObjectStore,
  prefix: string,
  inShard: (e: ObjectEntry) => boolean,
  signal: AbortSignal,
): Promise<number> {
  let n = 0;
  for await (const e of store.list(prefix, signal)) if (inShard(e)) n++;
  return n;
}

/**
 * Selection sampling (Knuth's algorithm S): called once per object in order, answers true for
 * `wanted` of `total` objects, each subset equally likely, holding two counters. Objects that
 * appear after the count are taken while the sample is short, so it is never larger than asked.
 */
export function selectionSample(
  wanted: number,
  total: number,
  random: () => number = Math.random,
): () => boolean {
  let seen = 0;
  let chosen = 0;
  return () => {
    const left = total - seen;
    seen++;
    if (chosen >= wanted) return false;
    if (left <= wanted - chosen || random() * left < wanted - chosen) {
      chosen++;
      return true;
    }
    return false;
  };
}

export async function runShard(input: RunShardOptions): Promise<ShardReport> {
  const options = checkRunShardOptions(input);
  const shard = options.shard ?? { index: 0, count: 1 };
  const loc =
    typeof options.location === 'string'
      ? objectLocation(options.location, options.endpoints, 'options.endpoints')
      : options.location;
  const journalPrefix = options.journalPrefix ?? `${loc.prefix}${DEFAULT_JOURNAL_DIR}`;
  // Objects under the journal prefix are never migrated: a prefix the location lies under
  // would leave every object out, and the run would report an empty shard as finished.
  if (options.journalDir === undefined && loc.prefix.startsWith(journalPrefix))
    throw invalidArgument(
      'options.journalPrefix',
      'the location lies under the journal prefix, so no object would be migrated',
    );
  // Inside the location, a prefix is a folder: `data/j` would also leave out `data/jpeg/...`,
  // objects migrated by no run and counted nowhere.
  if (
    options.journalDir === undefined &&
    journalPrefix.startsWith(loc.prefix) &&
    !journalPrefix.endsWith('/')
  )
    throw invalidArgument(
      'options.journalPrefix',
      'a journal prefix inside the location must end with "/": objects whose keys merely begin with it would be left out of the migration',
    );
  const signal = options.signal;
  // Nothing is taken (no journal written) for a run aborted before it starts.
  if (signal?.aborted === true) throw abortedError(signal);
  const stats = new CallStats();
  const bucket = new TokenBucket(options.maxRps ?? Number.POSITIVE_INFINITY);
  const store = metered(loc.store, bucket, stats);
  const sink: JournalSink =
    options.journalDir !== undefined
      ? fileJournal(options.journalDir, shard)
      : // Through the rate limit too: a journal's reads and writes are calls like any other.
        objectJournal(store, journalPrefix, shard);
  const keys = countedKeys(options.keys, stats, schemeOf);
  // Every error past this point is the caller's abort when their signal fired: the SDKs report
  // it each in their own way (an AbortError, the reason given, a reset connection).
  const typed = (e: unknown): unknown => (signal?.aborted === true ? abortedError(signal) : e);
  // Journal writes stop with the caller's signal; after it fired, the last write (the progress
  // made) still gets a bounded time, so a service that no longer answers cannot hold the abort.
  const journalSignal = (): AbortSignal | undefined =>
    signal?.aborted === true ? AbortSignal.timeout(JOURNAL_WRITE_AFTER_ABORT_MS) : signal;
  const previous = await sink.acquire(signal).catch((e: unknown) => {
    throw typed(e);
  });
  const started = performance.now();
  const state: JournalState = {
    format: JOURNAL_FORMAT,
    location: `${loc.store.location}/${loc.prefix}`,
    from: options.from,
    to: options.to,
    shard,
    startedAt: new Date().toISOString(),
    updatedAt: new Date().toISOString(),
    listingDone: false,
    finished: false,
    counts: {
      listed: 0,
      done: 0,
      migrated: 0,
      already: 0,
      skipped: 0,
      vanished: 0,
      failed: 0,
      conflicts: 0,
      verified: 0,
    },
    rate: 0,
    calls: {},
    failures: [],
    conflicts: [],
    vanished: [],
    runs: (previous?.runs ?? 0) + 1,
    writer: randomUUID(),
  };
  // The journal is progress, not the truth, so a write that fails for a passing reason
  // (throttled, unavailable) does not stop the migration: the next write carries the newer state.
  // Another writer on the journal, or any other failure, stops the run. Writes are coalesced: one
  // running and at most one waiting, which takes its snapshot when it starts.
  let writing: Promise<void> = Promise.resolve();
  let waiting: Promise<void> | undefined;
  let journalError: unknown;
  let journalBehind: unknown;
  const flush = (): Promise<void> => {
    if (waiting !== undefined) return waiting;
    const next = writing.then(async () => {
      waiting = undefined;
      state.updatedAt = new Date().toISOString();
      state.rate =
        Math.round((state.counts.done / Math.max(0.001, (performance.now() - started) / 1000)) * 100) / 100;
      state.calls = stats.report();
      const snapshot = JSON.parse(JSON.stringify(state)) as JournalState;
      try {
        options.onProgress?.(snapshot);
      } catch {
        // A progress display that fails is no reason to stop writing the journal.
      }
      try {
        await sink.write(snapshot, journalSignal());
        journalBehind = undefined;
      } catch (e) {
        if (!(e instanceof JournalTakenError) && isPassing(e)) journalBehind = e;
        else journalError ??= e;
      }
    });
    waiting = next;
    writing = next;
    return next;
  };
  // The first write takes the journal (create-only, or on the version a previous run left):
  // without it there is no single writer, so it has to succeed.
  await flush();
  if (journalError !== undefined || journalBehind !== undefined) throw typed(journalError ?? journalBehind);
  const timer = setInterval(() => void flush(), options.journalEveryMs ?? 1000);
  const abort = new AbortController();
  const stop = signal === undefined ? abort.signal : AbortSignal.any([signal, abort.signal]);
  try {
    // A key the store lists outside the prefix (an S3-compatible store that normalises the
    // prefix, say) is never migrated: the prefix bounds what a run may rewrite.
    const inShard = (e: ObjectEntry): boolean =>
      e.key.startsWith(loc.prefix) &&
      !e.key.startsWith(journalPrefix) &&
      shardOf(e.key, shard.count) === shard.index;
    const verify = options.verify ?? 'none';
    const pick =
      typeof verify === 'object'
        ? selectionSample(verify.sample, await countShard(store, loc.prefix, inShard, stop))
        : () => verify === 'all';
    // One listing shared by every lane: each lane pulls the next object when it is free, so the
    // listing runs at the pace of the migration and at most a page is held ahead of it.
    const listing = (async function* (): AsyncGenerator<ObjectEntry> {
      for await (const e of store.list(loc.prefix, stop)) {
        if (!inShard(e)) continue;
        state.counts.listed++;
        yield e;
      }
      state.listingDone = true;
    })();
    const one = async (entry: ObjectEntry, verifyIt: boolean): Promise<void> => {
      try {
        const out = await migrateObject(store, entry.key, {
          from: options.from,
          to: options.to,
          keys,
          keepSource: options.keepSource === true,
          verify: verifyIt,
          ...(options.reproducedContext !== undefined
            ? { reproducedContext: options.reproducedContext }
            : {}),
          signal: stop,
          ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
          onConflict: (key, versionRead) => {
            state.counts.conflicts++;
            if (state.conflicts.length < MAX_LISTED_FAILURES) state.conflicts.push({ key, versionRead });
          },
          onThrottle: () => stats.throttled(store.provider),
          ...(options.beforeWrite !== undefined ? { beforeWrite: options.beforeWrite } : {}),
        });
        state.counts[out.outcome]++;
        if (out.outcome === 'migrated' && out.verified) state.counts.verified++;
        // Not done: nothing is known to be under the target key. Listed with its key, so a name
        // the store lists but cannot read by (found missing on every run) can be looked into.
        if (out.outcome === 'vanished') {
          if (state.vanished.length < MAX_LISTED_FAILURES) state.vanished.push({ key: entry.key });
        } else state.counts.done++;
      } catch (e) {
        const err = toKeyportError(e);
        if (stop.aborted) throw err;
        state.counts.failed++;
        if (state.failures.length < MAX_LISTED_FAILURES)
          state.failures.push({ key: entry.key, code: err.code, message: err.message });
      }
      if (journalError !== undefined) {
        abort.abort(journalError);
        throw journalError;
      }
    };
    // The first error ends the run. A failed listing lets the objects in flight finish (their
    // writes are conditional and complete); an abort or a lost journal stops them.
    let failure: { error: unknown } | undefined;
    const lane = async (): Promise<void> => {
      while (failure === undefined) {
        let next: IteratorResult<ObjectEntry>;
        try {
          next = await listing.next();
        } catch (e) {
          failure ??= { error: stop.aborted ? toKeyportError(e) : e };
          return;
        }
        if (next.done) return;
        try {
          await one(next.value, pick());
        } catch (e) {
          failure ??= { error: e };
          abort.abort(e);
          return;
        }
      }
    };
    const lanes = options.concurrency ?? 8;
    await Promise.all(Array.from({ length: lanes }, lane));
    // Lanes stopped early leave the listing suspended: close it (and the provider's pager).
    await listing.return(undefined).catch(() => undefined);
    if (failure !== undefined) throw failure.error;
    state.finished = true;
  } catch (e) {
    throw typed(e);
  } finally {
    clearInterval(timer);
    if (!((journalError as unknown) instanceof JournalTakenError)) await flush();
    await sink.release();
  }
  if (journalError !== undefined) throw journalError;
  // Every object was dealt with, but the journal could not be brought up to date: say so.
  if (journalBehind !== undefined) throw journalBehind;
  return state;
}

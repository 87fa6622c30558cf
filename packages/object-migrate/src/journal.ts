/**
 * Per-shard journals: progress, speed and failures for `status`, never the truth about an
 * object (its header is). One writer per journal: in a bucket every write is conditioned on
 * the version this worker last wrote (a second worker on the same shard loses its first
 * write and stops); on a path an exclusive lock file holds the writer's pid and host, and a
 * lock left by a dead process on this host is taken over.
 */

import { mkdir, open, readdir, readFile, realpath, rename, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import {
  checkInteger,
  checkOptions,
  checkString,
  createFileExclusive,
  describeType,
  invalidArgument,
  KeyportError,
} from '@keyport/core';
import { checkShard, MAX_SHARDS, type Shard } from './shard.js';
import { ObjectChangedError, type ObjectRead, type ObjectStore, readUnchanged } from './store.js';
import { backoffMs, isPassing, type ProviderCalls, sleep } from './throttle.js';

export const JOURNAL_FORMAT = 'keyport-object-migrate/1';

export interface ShardCounts {
  /** Objects of this shard listed by this run. */
  listed: number;
  /** migrated + already + skipped. */
  done: number;
  migrated: number;
  already: number;
  skipped: number;
  /**
   * Listed, then not found when read (deleted since, or a name the store cannot be read by):
   * not in `done`, and a run with any is not ok. Absent from journals written before it was
   * counted: read as 0.
   */
  vanished: number;
  failed: number;
  conflicts: number;
  verified: number;
}

export interface JournalState {
  readonly format: typeof JOURNAL_FORMAT;
  readonly location: string;
  readonly from: string;
  readonly to: string;
  readonly shard: Shard;
  readonly startedAt: string;
  updatedAt: string;
  /** True once the listing is complete (so `listed` is the shard's total). */
  listingDone: boolean;
  finished: boolean;
  counts: ShardCounts;
  /** Objects per second done by this run. */
  rate: number;
  calls: Record<string, ProviderCalls>;
  failures: { key: string; code: string; message: string }[];
  conflicts: { key: string; versionRead: string }[];
  /** The first MAX_LISTED_FAILURES vanished objects (absent from older journals: read as none). */
  vanished: { key: string }[];
  /** How many times this shard has been started (restarts after a kill included). */
  runs: number;
  /** A random id of the run writing this journal: tells its own earlier write from another worker's. */
  readonly writer: string;
}

export const MAX_LISTED_FAILURES = 100;

export interface JournalSink {
  readonly where: string;
  /** Takes the journal for this worker; returns the state a previous run left, if any. */
  acquire(signal?: AbortSignal): Promise<JournalState | undefined>;
  write(state: JournalState, signal?: AbortSignal): Promise<void>;
  release(): Promise<void>;
}

export const journalName = (shard: Shard): string => `shard-${shard.index}-of-${shard.count}.json`;

/**
 * The most bytes a journal is read to. A journal holds counts and at most MAX_LISTED_FAILURES
 * failures, conflicts and vanished objects each (keys of at most 1,024 bytes and messages of at most 2,048 characters,
 * JSON-escaped): a few MiB at worst. Anyone who can write the bucket can make the object far
 * larger, and reading it whole held all of it in memory, in every worker and in `status`.
 */
export const MAX_JOURNAL_BYTES = 8 * 1024 * 1024;

const COUNT_FIELDS = [
  'listed',
  'done',
  'migrated',
  'already',
  'skipped',
  'vanished',
  'failed',
  'conflicts',
  'verified',
] as const satisfies readonly (keyof ShardCounts)[];

type Fields = Record<string, unknown>;
const isFields = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isRate = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const isText = (v: unknown): boolean => typeof v === 'string';

/**
 * True when `v` has every field of a journal, each of its type. The journal lives in the bucket,
 * where anyone with write access can change it: a journal holding its format tag and nothing else
 * (or a count that is a string, a shard that is not one) made `status` fail with a TypeError.
 */
function isJournalState(v: unknown): v is JournalState {
  if (!isFields(v) || v.format !== JOURNAL_FORMAT) return false;
  const { shard, counts, calls, failures, conflicts, vanished } = v;
  return (
    ['location', 'from', 'to', 'startedAt', 'updatedAt', 'writer'].every((f) => isText(v[f])) &&
    typeof v.listingDone === 'boolean' &&
    typeof v.finished === 'boolean' &&
    isCount(v.runs) &&
    isRate(v.rate) &&
    isFields(shard) &&
    isCount(shard.count) &&
    isCount(shard.index) &&
    (shard.count as number) >= 1 &&
    (shard.count as number) <= MAX_SHARDS &&
    (shard.index as number) < (shard.count as number) &&
    isFields(counts) &&
    COUNT_FIELDS.every((f) => isCount(counts[f])) &&
    isFields(calls) &&
    Object.values(calls).every(
      (c) => isFields(c) && isCount(c.calls) && isCount(c.throttled) && isRate(c.rate),
    ) &&
    Array.isArray(failures) &&
    failures.every((f) => isFields(f) && isText(f.key) && isText(f.code) && isText(f.message)) &&
    Array.isArray(conflicts) &&
    conflicts.every((c) => isFields(c) && isText(c.key) && isText(c.versionRead)) &&
    Array.isArray(vanished) &&
    vanished.every((x) => isFields(x) && isText(x.key))
  );
}

/**
 * The journal `text` holds, or undefined when it holds none: not JSON, not a journal of this
 * format, or one of another shard than the name it is stored under (`shard`), which would speak
 * for a shard whose journal it is not.
 */
function parseState(text: string | undefined, shard: Shard): JournalState | undefined {
  if (text === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  // Journals written before vanished objects were counted have neither field: read as none, so a
  // run resumed after an upgrade (and `status` meanwhile) still takes its shard's journal.
  if (isFields(v)) {
    if (isFields(v.counts) && v.counts.vanished === undefined) v.counts.vanished = 0;
    if (v.vanished === undefined) v.vanished = [];
  }
  return isJournalState(v) && v.shard.index === shard.index && v.shard.count === shard.count ? v : undefined;
}

/** The body as text, or undefined past MAX_JOURNAL_BYTES (the read is cancelled there). */
async function readBody(read: ObjectRead): Promise<string | undefined> {
  const parts: Buffer[] = [];
  let bytes = 0;
  try {
    for await (const p of read.body) {
      bytes += p.byteLength;
      if (bytes > MAX_JOURNAL_BYTES) return undefined;
      parts.push(Buffer.from(p));
    }
  } finally {
    // Stopped early or failed: the rest of the body is not read.
    if (bytes > MAX_JOURNAL_BYTES) read.cancel();
  }
  return Buffer.concat(parts).toString('utf8');
}

/** A journal file's text, or undefined when it is missing or past MAX_JOURNAL_BYTES. */
async function readJournalFile(path: string): Promise<string | undefined> {
  let h: Awaited<ReturnType<typeof open>>;
  try {
    h = await open(path, 'r');
  } catch {
    return undefined;
  }
  try {
    if ((await h.stat()).size > MAX_JOURNAL_BYTES) return undefined;
    return await h.readFile('utf8');
  } catch {
    return undefined;
  } finally {
    await h.close();
  }
}

/** The shard a journal's name (`shard-<i>-of-<n>.json`) says it holds, or undefined. */
function shardOfName(name: string): Shard | undefined {
  const m = /^shard-(0|[1-9][0-9]{0,4})-of-([1-9][0-9]{0,4})\.json$/.exec(name);
  return m === null ? undefined : { index: Number(m[1]), count: Number(m[2]) };
}

export class JournalTakenError extends KeyportError {
  override readonly name = 'JournalTakenError';
  constructor(where: string) {
    super('KeyStateConflict', `another worker is writing the journal ${where}: one writer per shard`);
  }
}

/**
 * `{ index, count }`, checked: a misspelt field would name a journal `shard-undefined-of-1.json`
 * that no status reads and no rerun finds.
 */
function checkShardArgument(value: unknown): Shard {
  if (value === undefined) throw invalidArgument('shard', 'expected { index, count }');
  const o = checkOptions(value, 'shard', { index: true, count: true } as const satisfies Record<
    keyof Shard,
    true
  >);
  const count = checkInteger(o.count, 'shard.count', 1, MAX_SHARDS);
  return checkShard(checkInteger(o.index, 'shard.index', 0, MAX_SHARDS - 1), count);
}

/** A journal object in the bucket, `<prefix>shard-<i>-of-<n>.json`. */
export function objectJournal(store: ObjectStore, prefix: string, shardInput: Shard): JournalSink {
  if (typeof store !== 'object' || store === null)
    throw invalidArgument('store', `expected an object store, got ${describeType(store)}`);
  checkString(prefix, 'prefix', { max: 1024 });
  const shard = checkShardArgument(shardInput);
  const key = `${prefix}${journalName(shard)}`;
  let version: string | undefined;
  const where = `${store.location}/${key}`;
  return {
    where,
    async acquire(signal) {
      try {
        const read = await readJournal(store, key, shard, signal);
        version = read?.version;
        return read?.state;
      } catch (e) {
        // A journal that keeps changing while we read it has another live writer.
        throw e instanceof ObjectChangedError ? new JournalTakenError(where) : e;
      }
    },
    async write(state, signal) {
      const body = Buffer.from(JSON.stringify(state));
      for (let attempt = 0; ; attempt++) {
        try {
          const out = await store.put(key, body, {
            condition: version === undefined ? { ifAbsent: true } : { ifVersion: version },
            attributes: { contentType: 'application/json', metadata: {}, tags: {} },
            signal,
          });
          version = out.version;
          return;
        } catch (e) {
          if (attempt >= 5) throw e instanceof ObjectChangedError ? new JournalTakenError(where) : e;
          if (e instanceof ObjectChangedError) {
            // An earlier write of ours may have landed although its answer was lost (a reset
            // connection): then the journal is still ours, at a version we did not see.
            let now: Awaited<ReturnType<typeof readJournal>>;
            try {
              now = await readJournal(store, key, shard, signal);
            } catch (readError) {
              if (readError instanceof ObjectChangedError) throw new JournalTakenError(where);
              // Not knowing who wrote it is no proof of another writer: look again after a pause.
              if (!isPassing(readError)) throw readError;
              await sleep(backoffMs(attempt), signal);
              continue;
            }
            if (now === undefined || now.state?.writer !== state.writer) throw new JournalTakenError(where);
            version = now.version;
            continue;
          }
          if (!isPassing(e)) throw e;
          await sleep(backoffMs(attempt), signal);
        }
      }
    },
    async release() {},
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The lock files this thread holds, by real path. A lock naming this process's own pid may have
 * been left by an earlier process with the same pid (a container's worker is pid 1, or another
 * fixed pid, in every incarnation): such a lock was refused forever. It is this process's only
 * when it is in here or names this process's start (another worker thread of it holds it).
 */
const locksHeld = new Set<string>();

/** When this process started, in ms since the epoch: the same in each of its worker threads. */
const processStart = (): number => Math.round(Date.now() - process.uptime() * 1000);

/** How far two readings of one process's start may differ (the wall clock may be adjusted). */
const PROCESS_START_SLACK_MS = 1000;

/** A journal file in `dir`, written by temp + rename, guarded by `<file>.lock`. */
export function fileJournal(dir: string, shardInput: Shard): JournalSink {
  checkString(dir, 'dir', { min: 1 });
  const shard = checkShardArgument(shardInput);
  const path = join(dir, journalName(shard));
  const lock = `${path}.lock`;
  let held = false;
  /** The lock's real path while this journal holds (or is taking) it. */
  let owned: string | undefined;
  // The lock appears with its content already in it (core's createFileExclusive): a worker
  // killed while taking it never leaves an empty lock. False when another holds it.
  const take = async (): Promise<boolean> => {
    held = await createFileExclusive(
      lock,
      JSON.stringify({
        pid: process.pid,
        host: hostname(),
        processStart: processStart(),
        startedAt: new Date().toISOString(),
      }),
      `${lock}.${process.pid}.${Date.now()}.tmp`,
    );
    return held;
  };
  const acquire = async (): Promise<void> => {
    await mkdir(dir, { recursive: true });
    const real = join(await realpath(dir), `${journalName(shard)}.lock`);
    // Another journal of this process holds it, or is taking it right now.
    if (locksHeld.has(real)) throw new JournalTakenError(path);
    locksHeld.add(real);
    owned = real;
    try {
      if (!(await take())) {
        const text = await readFile(lock, 'utf8').catch(() => undefined);
        let owner: { pid?: unknown; host?: unknown; processStart?: unknown } = {};
        try {
          const parsed: unknown = text === undefined || text === '' ? {} : JSON.parse(text);
          if (typeof parsed === 'object' && parsed !== null) owner = parsed as typeof owner;
        } catch {
          // not a lock this code wrote: refused below
        }
        // An empty lock was left by an earlier version killed while taking it: nobody holds it.
        // One naming this pid but not this process's start (or no start: an earlier version's)
        // was left by an earlier process with the same pid (see `locksHeld`).
        const stale =
          text === '' ||
          (owner.host === hostname() &&
            typeof owner.pid === 'number' &&
            (owner.pid === process.pid
              ? !(
                  typeof owner.processStart === 'number' &&
                  Math.abs(owner.processStart - processStart()) <= PROCESS_START_SLACK_MS
                )
              : !alive(owner.pid)));
        if (!stale) throw new JournalTakenError(path);
        await unlink(lock).catch(() => undefined);
        // Another worker may take it between the unlink and this attempt: then it is theirs.
        if (!(await take())) throw new JournalTakenError(path);
      }
    } catch (e) {
      locksHeld.delete(real);
      owned = undefined;
      throw e;
    }
  };
  return {
    where: path,
    async acquire() {
      await acquire();
      return parseState(await readJournalFile(path), shard);
    },
    async write(state) {
      const tmp = `${path}.${process.pid}.tmp`;
      const h = await open(tmp, 'w', 0o600);
      try {
        await h.writeFile(JSON.stringify(state));
        await h.sync();
      } finally {
        await h.close();
      }
      await rename(tmp, path);
    },
    async release() {
      if (held) await unlink(lock).catch(() => undefined);
      held = false;
      if (owned !== undefined) locksHeld.delete(owned);
      owned = undefined;
    },
  };
}

/**
 * A journal object's version and state; undefined when there is none. Read again when it was
 * overwritten while being read (a live worker rewrites its journal every few seconds).
 */
async function readJournal(
  store: ObjectStore,
  key: string,
  shard: Shard,
  signal?: AbortSignal,
): Promise<{ version: string; state: JournalState | undefined } | undefined> {
  return readUnchanged(async () => {
    const read = await store.get(key, signal);
    return { version: read.version, state: parseState(await readBody(read), shard) };
  });
}

/**
 * Every shard journal under a bucket prefix, as it is now: `status` runs while workers write
 * them, so a journal overwritten while read is read again, and one deleted since the listing
 * is left out.
 */
export async function readObjectJournals(store: ObjectStore, prefix: string): Promise<JournalState[]> {
  const out: JournalState[] = [];
  for await (const e of store.list(prefix)) {
    // Only the journals right under the prefix, as `objectJournal` names them: a journal in a
    // folder below it (another location's, an old copy) or a key merely ending like one is not
    // one of this location's shards.
    const shard = e.key.startsWith(prefix) ? shardOfName(e.key.slice(prefix.length)) : undefined;
    if (shard === undefined) continue;
    const s = (await readJournal(store, e.key, shard))?.state;
    if (s !== undefined) out.push(s);
  }
  return out;
}

/** Every shard journal in a directory. */
export async function readFileJournals(dir: string): Promise<JournalState[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: JournalState[] = [];
  for (const n of names) {
    const shard = shardOfName(n);
    if (shard === undefined) continue;
    const s = parseState(await readJournalFile(join(dir, n)), shard);
    if (s !== undefined) out.push(s);
  }
  return out;
}

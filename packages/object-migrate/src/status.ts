/**
 * `status`: every shard's journal merged into one view, and, when asked, the objects' own
 * headers counted, which is what "done" really means.
 */
import { checkOptions, checkSignal, checkString, describeType, invalidArgument } from '@keyport/core';
import { kmsRecipient } from '@keyport/envelope';
import { peekHeader } from './header.js';
import { type JournalState, MAX_LISTED_FAILURES, readFileJournals, readObjectJournals } from './journal.js';
import type { ObjectLocation } from './location.js';
import { type ObjectStore, readUnchanged } from './store.js';
import { DEFAULT_JOURNAL_DIR } from './worker.js';

export interface MigrationStatus {
  readonly shards: {
    readonly expected: number;
    readonly reporting: number;
    readonly finished: number;
    readonly missing: number[];
  };
  readonly total: number;
  readonly done: number;
  readonly left: number;
  readonly failed: number;
  readonly migrated: number;
  readonly already: number;
  readonly skipped: number;
  /** Listed, then not found when read (see `ShardCounts.vanished`): not done, not left. */
  readonly vanished: number;
  readonly conflicts: number;
  /** Objects per second, summed over the shards still running. */
  readonly rate: number;
  /** Seconds to go at that rate; undefined when nothing is running or nothing is left. */
  readonly etaSeconds: number | undefined;
  /** True when every shard's listing is complete, so `total` is the real total. */
  readonly totalKnown: boolean;
  readonly failures: JournalState['failures'];
  readonly conflictsSeen: JournalState['conflicts'];
  readonly vanishedSeen: JournalState['vanished'];
}

/** Merges shard journals; with several shard counts present, the newest count wins. */
export function mergeJournals(journals: readonly JournalState[]): MigrationStatus {
  const newest = [...journals].sort((a, b) => b.updatedAt.localeCompare(a.updatedAt))[0];
  const count = newest?.shard.count ?? 0;
  const byIndex = new Map<number, JournalState>();
  for (const j of journals) {
    if (j.shard.count !== count) continue;
    const seen = byIndex.get(j.shard.index);
    if (seen === undefined || seen.updatedAt < j.updatedAt) byIndex.set(j.shard.index, j);
  }
  const list = [...byIndex.values()];
  const sum = (f: (j: JournalState) => number) => list.reduce((a, j) => a + f(j), 0);
  const total = sum((j) => j.counts.listed);
  const done = sum((j) => j.counts.done);
  const failed = sum((j) => j.counts.failed);
  const vanished = sum((j) => j.counts.vanished);
  const left = Math.max(0, total - done - failed - vanished);
  const rate = Math.round(sum((j) => (j.finished ? 0 : j.rate)) * 100) / 100;
  const missing: number[] = [];
  for (let i = 0; i < count; i++) if (!byIndex.has(i)) missing.push(i);
  return {
    shards: {
      expected: count,
      reporting: list.length,
      finished: list.filter((j) => j.finished).length,
      missing,
    },
    total,
    done,
    left,
    failed,
    migrated: sum((j) => j.counts.migrated),
    already: sum((j) => j.counts.already),
    skipped: sum((j) => j.counts.skipped),
    vanished,
    conflicts: sum((j) => j.counts.conflicts),
    rate,
    etaSeconds: rate > 0 && left > 0 ? Math.ceil(left / rate) : undefined,
    totalKnown: missing.length === 0 && list.every((j) => j.listingDone),
    failures: list.flatMap((j) => j.failures),
    conflictsSeen: list.flatMap((j) => j.conflicts),
    vanishedSeen: list.flatMap((j) => j.vanished),
  };
}

/** Where `migrationStatus` finds the journals. */
export interface MigrationStatusOptions {
  journalPrefix?: string;
  journalDir?: string;
}

const STATUS_OPTIONS = { journalPrefix: true, journalDir: true } as const satisfies Record<
  keyof MigrationStatusOptions,
  true
>;

export async function migrationStatus(
  location: ObjectLocation,
  input: MigrationStatusOptions = {},
): Promise<MigrationStatus> {
  // A misspelt journalDir would read the bucket's journals (none, or another run's) instead.
  const options = checkOptions(input, 'options', STATUS_OPTIONS) as MigrationStatusOptions;
  if (options.journalPrefix !== undefined)
    checkString(options.journalPrefix, 'options.journalPrefix', { max: 1024 });
  if (options.journalDir !== undefined) checkString(options.journalDir, 'options.journalDir', { min: 1 });
  if (typeof location !== 'object' || location === null)
    throw invalidArgument('location', `expected { store, prefix }, got ${describeType(location)}`);
  const journals =
    options.journalDir !== undefined
      ? await readFileJournals(options.journalDir)
      : await readObjectJournals(
          location.store,
          options.journalPrefix ?? `${location.prefix}${DEFAULT_JOURNAL_DIR}`,
        );
  return mergeJournals(journals);
}

export interface HeaderCounts {
  /** Names the target and not the source. */
  target: number;
  /** Still names the source (and not the target). */
  source: number;
  /** Names both. */
  both: number;
  /** Not an envelope, or sealed for neither key. */
  other: number;
  /**
   * Listed, then not found when read: in none of the four counts above, since its header was
   * never seen. Deleted since the listing, or a name the store lists but cannot be read by (such
   * an object may still be sealed for the source key only), so the counts cover every listed
   * object only when this is 0.
   */
  vanished: number;
  /** The first MAX_LISTED_FAILURES (100) of them, to look into. */
  vanishedSeen: { key: string }[];
}

/** What `countHeaders` leaves out and stops on. */
export interface CountHeadersOptions {
  /** Keys under this prefix are not counted; default the journal prefix. */
  exclude?: string;
  signal?: AbortSignal;
}

const COUNT_HEADERS_OPTIONS = { exclude: true, signal: true } as const satisfies Record<
  keyof CountHeadersOptions,
  true
>;

/**
 * Reads each object's header (a streamed read, cancelled after the header) and counts by key.
 * An object listed but not found when read is counted as `vanished`, never silently left out.
 */
export async function countHeaders(
  store: ObjectStore,
  prefix: string,
  from: string,
  to: string,
  input: CountHeadersOptions = {},
): Promise<HeaderCounts> {
  const options = checkOptions(input, 'options', COUNT_HEADERS_OPTIONS) as CountHeadersOptions;
  if (options.exclude !== undefined) checkString(options.exclude, 'options.exclude', { min: 1, max: 1024 });
  if (options.signal !== undefined) checkSignal(options.signal, 'options.signal');
  checkString(prefix, 'prefix', { max: 1024 });
  const f = kmsRecipient(from);
  const t = kmsRecipient(to);
  const exclude = options.exclude ?? `${prefix}${DEFAULT_JOURNAL_DIR}`;
  const counts: HeaderCounts = { target: 0, source: 0, both: 0, other: 0, vanished: 0, vanishedSeen: [] };
  for await (const e of store.list(prefix, options.signal)) {
    if (!e.key.startsWith(prefix) || e.key.startsWith(exclude)) continue;
    // Counted as it is now: an object overwritten while its header is read (a migration may be
    // running) is read again; one not found by its listed name is counted as vanished. Left out,
    // the counts read as complete over fewer objects than listed, though such an object may be one
    // the store lists but cannot read by that name, still sealed for the source key only.
    const header = await readUnchanged(async () => {
      const read = await store.get(e.key, options.signal);
      try {
        return (await peekHeader(read.body)).header;
      } finally {
        read.cancel();
      }
    });
    if (header === undefined) {
      counts.vanished++;
      if (counts.vanishedSeen.length < MAX_LISTED_FAILURES) counts.vanishedSeen.push({ key: e.key });
      continue;
    }
    if (header.kind !== 'envelope') {
      counts.other++;
      continue;
    }
    const hasFrom = header.edks.some((x) => f.matches(x));
    const hasTo = header.edks.some((x) => t.matches(x));
    if (hasFrom && hasTo) counts.both++;
    else if (hasTo) counts.target++;
    else if (hasFrom) counts.source++;
    else counts.other++;
  }
  return counts;
}

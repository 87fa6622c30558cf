/**
 * Command handlers for `keyport migrate <s3://…|azblob://…|gs://…> --from <uri> --to <uri>`
 * and `keyport migrate status <location>`. They take the option strings as typed and return
 * the exit code, a JSON result and the human lines, so a CLI plugs them into its own output
 * and error handling.
 */
import {
  checkBoolean,
  checkOptions,
  checkString,
  type EncryptionContext,
  invalidArgument,
  type KeyOperations,
  KeyportError,
  quote,
} from '@keyport/core';
import { parseObjectLocation } from './location.js';
import { parseShard, shardFromEnv } from './shard.js';
import { countHeaders, migrationStatus } from './status.js';
import { MAX_MAX_RPS, MIN_MAX_RPS } from './throttle.js';
import { MAX_CONCURRENCY, runShard, type ShardReport } from './worker.js';

/** True for the locations this command handles (the local-file migrate handles the rest). */
export function isObjectLocation(target: string): boolean {
  return /^(s3|azblob|gs):\/\//.test(target);
}

export interface MigrateObjectsOptions {
  readonly from: string;
  readonly to: string;
  /** `i/n`; default from JOB_COMPLETION_INDEX / AWS_BATCH_JOB_ARRAY_INDEX, else 0/1. */
  readonly shard?: string;
  /** Storage calls per second for this worker, e.g. `200` or `0.5` (see `parseMaxRps`). */
  readonly maxRps?: string;
  readonly jobs?: string;
  /** `none`, `all` or `sample:N`. */
  readonly verify?: string;
  readonly keepSource?: boolean;
  /**
   * The pairs objects sealed with `contextNotStored` left out (the CLI's `--reproduced-context`,
   * parsed): a context map, not a flag string, as `runShard` takes it. Never journalled.
   */
  readonly reproducedContext?: EncryptionContext;
  /** Journal objects under this prefix in the bucket. */
  readonly journalPrefix?: string;
  /** Or journal files in this directory. */
  readonly journalDir?: string;
  /** Emulator / S3-compatible endpoints (e.g. from KEYPORT_S3_ENDPOINT, KEYPORT_GCS_ENDPOINT). */
  readonly s3Endpoint?: string;
  readonly gcsEndpoint?: string;
}

export interface CommandOutcome {
  readonly exitCode: number;
  readonly result: Record<string, unknown>;
  readonly lines: readonly string[];
}

/**
 * `--max-rps`: calls per second, in decimal digits with an optional fraction (`200`, `0.5` for
 * one call every 2 s), from MIN_MAX_RPS to MAX_MAX_RPS. Not `1e3`, hex, `Infinity`, a sign or
 * spaces: what `Number()` would also read differently than typed.
 */
export function parseMaxRps(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const rate = /^(0|[1-9][0-9]*)(\.[0-9]+)?$/.test(text) ? Number(text) : Number.NaN;
  if (!(rate >= MIN_MAX_RPS && rate <= MAX_MAX_RPS))
    throw new KeyportError(
      'InvalidArgument',
      `--max-rps takes calls per second from ${MIN_MAX_RPS} to ${MAX_MAX_RPS} in decimal digits (e.g. 200, or 0.5 for one call every 2 s), got ${quote(text)}`,
    );
  return rate;
}

/** `--jobs`: a whole number in decimal digits, 1 to `max` (`1.5` is refused, not floored). */
function count(text: string | undefined, flag: string, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[1-9][0-9]*$/.test(text) || !(Number(text) <= max))
    throw new KeyportError(
      'InvalidArgument',
      `${flag} takes a whole number from 1 to ${max}, got ${quote(text)}`,
    );
  return Number(text);
}

export function parseVerify(text: string | undefined): 'none' | 'all' | { sample: number } {
  if (text === undefined || text === 'none') return 'none';
  if (text === 'all') return 'all';
  const m = /^sample:([1-9][0-9]{0,6})$/.exec(text);
  if (m === null)
    throw new KeyportError('InvalidArgument', `--verify takes none, all or sample:N, got ${quote(text)}`);
  return { sample: Number(m[1]) };
}

const endpointsOf = (o: Pick<MigrateObjectsOptions, 's3Endpoint' | 'gcsEndpoint'>) => ({
  ...(o.s3Endpoint !== undefined ? { s3Endpoint: o.s3Endpoint } : {}),
  ...(o.gcsEndpoint !== undefined ? { gcsEndpoint: o.gcsEndpoint } : {}),
});

const MIGRATE_OBJECTS_OPTIONS = {
  from: true,
  to: true,
  shard: true,
  maxRps: true,
  jobs: true,
  verify: true,
  keepSource: true,
  reproducedContext: true,
  journalPrefix: true,
  journalDir: true,
  s3Endpoint: true,
  gcsEndpoint: true,
} as const satisfies Record<keyof MigrateObjectsOptions, true>;

/** What the command runs with besides the options. */
export interface MigrateObjectsContext {
  readonly keys: KeyOperations;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
}

const CONTEXT = { keys: true, signal: true, timeoutMs: true } as const satisfies Record<
  keyof MigrateObjectsContext,
  true
>;

/**
 * The options as typed by a user: strings (flag values), `keepSource` and the parsed
 * `reproducedContext` (checked with runShard's options). An unknown option is
 * refused naming it (a misspelt `keepSource` would remove the source key's EDK from every
 * object); a number or boolean where a flag string goes is refused naming the option. The
 * values themselves (shard, rates, endpoints) are checked where they are parsed.
 */
function checkCommandOptions<K extends string>(
  value: unknown,
  known: Readonly<Record<K, true>>,
): Record<string, unknown> {
  const o = checkOptions(value, 'options', known);
  for (const [key, v] of Object.entries(o)) {
    if (key === 'keepSource') checkBoolean(v, 'options.keepSource');
    // A context map (checked by runShard), as `headers` is an object: not a flag string.
    else if (key !== 'headers' && key !== 'reproducedContext') checkString(v, `options.${key}`);
  }
  return o;
}

/** Longest object key a text line shows (quoted; longer ones are cut, with their length). */
const SHOWN_KEY_CHARS = 200;

/**
 * An object key as a text line shows it: quoted, control characters escaped. Whoever can write
 * the bucket chooses its keys, and an ESC sequence, CR or bidi control in one would otherwise
 * rewrite the operator's terminal or forge a line of the report. The JSON result keeps keys exact.
 */
const shownKey = (key: string): string => quote(key, SHOWN_KEY_CHARS);

/**
 * The text lines of a shard's report. Every key is `shownKey`'d; an error message needs no more,
 * since a KeyportError's message has its control characters escaped when it is made.
 */
export function shardLines(shard: { index: number; count: number }, report: ShardReport): string[] {
  const c = report.counts;
  return [
    `shard ${shard.index}/${shard.count}: migrated ${c.migrated} of ${c.listed} objects (${report.rate}/s)`,
    `  already done: ${c.already}, skipped: ${c.skipped}, vanished: ${c.vanished}, failed: ${c.failed}, conflicts: ${c.conflicts}, verified: ${c.verified}`,
    ...Object.entries(report.calls).map(
      ([p, s]) => `  ${p}: ${s.calls} calls, ${s.throttled} throttled, ${s.rate} calls/s`,
    ),
    ...report.conflicts
      .slice(0, 20)
      .map((x) => `  changed by another writer while migrating (kept): ${shownKey(x.key)}`),
    ...report.vanished
      .slice(0, 20)
      // Such a name (a CR in it) is often why it vanished.
      .map(
        (x) =>
          `  listed but not found when read (deleted since, or not readable by that name): ${shownKey(x.key)}`,
      ),
    ...report.failures.slice(0, 20).map((f) => `  failed ${shownKey(f.key)}: ${f.code} ${f.message}`),
  ];
}

/**
 * Whether every object listed was dealt with: none failed, none vanished. One that vanished is not
 * known to be under the target key (deleted by its owner, or a name the store lists but cannot be
 * read by); a re-run that no longer lists it is ok. The one rule for a run and for `status` over
 * its journals, so the two never disagree on the same counts.
 */
function migrationOk(counts: { readonly failed: number; readonly vanished: number }): boolean {
  return counts.failed === 0 && counts.vanished === 0;
}

/** Runs this worker's shard. Exit 0 when `migrationOk` (none failed, none vanished), 1 otherwise. */
export async function migrateObjectsCommand(
  location: string,
  options: MigrateObjectsOptions,
  context: MigrateObjectsContext,
): Promise<CommandOutcome> {
  const o = checkCommandOptions(options, MIGRATE_OBJECTS_OPTIONS) as unknown as MigrateObjectsOptions;
  // keys, signal and timeoutMs are checked by runShard, which takes them as they are.
  const ctx = checkOptions(context, 'context', CONTEXT) as unknown as MigrateObjectsContext;
  if (context === undefined) throw invalidArgument('context', 'expected { keys, signal?, timeoutMs? }');
  const shard = o.shard !== undefined ? parseShard(o.shard) : shardFromEnv();
  const maxRps = parseMaxRps(o.maxRps);
  const jobs = count(o.jobs, '--jobs', MAX_CONCURRENCY);
  const report = await runShard({
    location,
    endpoints: endpointsOf(o),
    from: o.from,
    to: o.to,
    keys: ctx.keys,
    shard,
    verify: parseVerify(o.verify),
    keepSource: o.keepSource === true,
    ...(o.reproducedContext !== undefined ? { reproducedContext: o.reproducedContext } : {}),
    ...(maxRps !== undefined ? { maxRps } : {}),
    ...(jobs !== undefined ? { concurrency: jobs } : {}),
    ...(o.journalPrefix !== undefined ? { journalPrefix: o.journalPrefix } : {}),
    ...(o.journalDir !== undefined ? { journalDir: o.journalDir } : {}),
    ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}),
    ...(ctx.timeoutMs !== undefined ? { timeoutMs: ctx.timeoutMs } : {}),
  });
  const c = report.counts;
  const lines = shardLines(shard, report);
  const ok = migrationOk(c);
  return { exitCode: ok ? 0 : 1, result: { ok, ...report }, lines };
}

/** The options of `migrate status`. */
export type MigrateObjectsStatusOptions = Pick<
  MigrateObjectsOptions,
  'journalPrefix' | 'journalDir' | 's3Endpoint' | 'gcsEndpoint'
> & {
  readonly headers?: { readonly from: string; readonly to: string };
};

const STATUS_OPTIONS = {
  journalPrefix: true,
  journalDir: true,
  s3Endpoint: true,
  gcsEndpoint: true,
  headers: true,
} as const satisfies Record<keyof MigrateObjectsStatusOptions, true>;

/**
 * Merges every shard's journal; `--headers` also counts what the objects' headers say. Exit 1
 * (`ok: false`) when the journals count an object failed or vanished, as the run that wrote them
 * exits: a script polling `status` must not read "0" as "migrated" while objects are not.
 */
export async function migrateObjectsStatusCommand(
  location: string,
  options: MigrateObjectsStatusOptions,
): Promise<CommandOutcome> {
  const o = checkCommandOptions(options, STATUS_OPTIONS) as MigrateObjectsStatusOptions;
  let headers: { from: string; to: string } | undefined;
  if (o.headers !== undefined) {
    const h = checkOptions(o.headers, 'options.headers', { from: true, to: true });
    headers = {
      from: checkString(h.from, 'options.headers.from', { min: 1 }),
      to: checkString(h.to, 'options.headers.to', { min: 1 }),
    };
  }
  const loc = parseObjectLocation(location, endpointsOf(o));
  const status = await migrationStatus(loc, {
    ...(o.journalPrefix !== undefined ? { journalPrefix: o.journalPrefix } : {}),
    ...(o.journalDir !== undefined ? { journalDir: o.journalDir } : {}),
  });
  // The journal objects are not the location's objects: left out wherever they are kept (a
  // journalPrefix inside the location would otherwise count each journal as "other").
  const counts =
    headers === undefined
      ? undefined
      : await countHeaders(loc.store, loc.prefix, headers.from, headers.to, {
          ...(o.journalPrefix !== undefined && o.journalPrefix !== '' ? { exclude: o.journalPrefix } : {}),
        });
  const eta = status.etaSeconds === undefined ? '-' : `${Math.round(status.etaSeconds / 60)} min`;
  const lines = [
    `${status.done} done, ${status.left} left, ${status.failed} failed${status.vanished > 0 ? `, ${status.vanished} vanished (listed, not found when read)` : ''} of ${status.total}${status.totalKnown ? '' : ' listed so far'}; ${status.rate}/s, ETA ${eta}`,
    `  shards: ${status.shards.reporting}/${status.shards.expected} reporting, ${status.shards.finished} finished${status.shards.missing.length > 0 ? `, missing ${status.shards.missing.join(',')}` : ''}`,
    ...(counts !== undefined
      ? [
          `  headers: ${counts.target} target, ${counts.source} source, ${counts.both} both, ${counts.other} other${counts.vanished > 0 ? `; ${counts.vanished} listed but not found when read, not counted` : ''}`,
          ...counts.vanishedSeen
            .slice(0, 20)
            .map(
              (x) =>
                `  listed but not found when read (deleted since, or not readable by that name): ${shownKey(x.key)}`,
            ),
        ]
      : []),
  ];
  const ok = migrationOk(status);
  if (!ok)
    lines.push(
      `  not ok: ${status.failed} failed, ${status.vanished} vanished; run the migration again (an object that fails or vanishes on every run needs looking into)`,
    );
  return {
    exitCode: ok ? 0 : 1,
    result: { ok, ...status, ...(counts !== undefined ? { headers: counts } : {}) },
    lines,
  };
}

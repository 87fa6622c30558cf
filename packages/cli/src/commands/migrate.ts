/**
 * `keyport migrate --from <uri> --to <uri> <dir|glob|manifest>`: resumable rewrap of envelope
 * files; `keyport migrate … <s3://…|azblob://…|gs://…>` the same over object storage, sharded
 * (`@keyport/object-migrate`, loaded only then); `keyport migrate status <location>` merges the
 * shards' journals.
 */
import { MAX_TIMER_MS } from '@keyport/core';
import type { Command } from 'commander';
import { collect, positiveInt, REPRODUCED_CONTEXT_HELP, reproducedContext } from '../args.js';
import { quotePath } from '../cli-errors.js';
import { MAX_JOBS } from '../config/schema.js';
import { usageError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import type { MigrateProgress } from '../migrate/files.js';
import { DEFAULT_JOURNAL, runMigration } from '../migrate/files.js';
import { progressLines } from '../migrate/progress.js';
import { shown } from '../output.js';
import type { Act } from '../program.js';
import { type Progress, startProgress } from '../progress.js';
import type { Session } from '../session.js';

/** Object-store locations (kept here, not imported: the package loads only when one is given). */
const OBJECT_LOCATION = /^(s3|azblob|gs):\/\//;

interface ObjectFlags {
  shard?: string;
  maxRps?: string;
  verify?: string;
  journalPrefix?: string;
  journalDir?: string;
  removeSource: boolean;
  jobs?: string;
}

/** Objects in flight per worker at most (object-migrate's `concurrency`). */
const MAX_OBJECT_JOBS = 64;
/** Failed (and skipped) files the text summary names one by one; the rest are counted. */
const SHOWN_FILES = 20;

/**
 * The text summary's lines for one list of files: the first SHOWN_FILES, then the rest counted,
 * never silently cut (--json lists every one). A run over a tree of 100,000 symlinks would
 * otherwise print 100,000 lines before its failures.
 */
function shownFiles<T>(list: readonly T[], line: (item: T) => string, what: string): string[] {
  return [
    ...list.slice(0, SHOWN_FILES).map(line),
    ...(list.length > SHOWN_FILES
      ? [`  … and ${list.length - SHOWN_FILES} more ${what} (--json lists them all)`]
      : []),
  ];
}

/** Flags that only a file migration reads (commander's option keys → the flag as typed). */
const FILE_ONLY_FLAGS = {
  dryRun: '--dry-run',
  journal: '--journal',
  followSymlinks: '--follow-symlinks',
  breakLock: '--break-lock',
  batch: '--no-batch',
  progressEvery: '--progress-every',
} as const;
/** Flags that only an object-store migration reads. */
const OBJECT_ONLY_FLAGS = {
  shard: '--shard',
  maxRps: '--max-rps',
  verify: '--verify',
  journalPrefix: '--journal-prefix',
  journalDir: '--journal-dir',
} as const;

/**
 * A flag the chosen kind of migration does not read is a usage error, never ignored: an object
 * migration given `--dry-run` would otherwise rewrite every object, and a file migration given
 * `--shard 0/2` would migrate every file.
 */
function refuseFlags(cmd: Command, flags: Readonly<Record<string, string>>, where: string): void {
  const given = Object.entries(flags)
    .filter(([key]) => cmd.getOptionValueSource(key) === 'cli')
    .map(([, flag]) => flag);
  if (given.length > 0)
    throw usageError(`${given.join(', ')} ${given.length === 1 ? 'does' : 'do'} not apply to ${where}`);
}

/** Emulator or S3-compatible endpoints, from the environment (credentials stay with each SDK's chain). */
function objectEndpoints(s: Session): { s3Endpoint?: string; gcsEndpoint?: string } {
  const { KEYPORT_S3_ENDPOINT: s3, KEYPORT_GCS_ENDPOINT: gcs } = s.io.env;
  return {
    ...(s3 !== undefined ? { s3Endpoint: s3 } : {}),
    ...(gcs !== undefined ? { gcsEndpoint: gcs } : {}),
  };
}

/**
 * `defaults.jobs` for an object-store run without --jobs (as for files). The config allows up to
 * 256 (files in flight); a worker keeps at most 64 objects in flight: a larger value is used as
 * 64, with a note, rather than making a config that serves file migrations unusable here.
 */
async function objectJobsDefault(s: Session): Promise<number | undefined> {
  const configured = (await s.defaults()).jobs;
  if (configured === undefined || configured <= MAX_OBJECT_JOBS) return configured;
  await s.out.note(
    `defaults.jobs is ${configured}; an object-store migration keeps at most ${MAX_OBJECT_JOBS} objects in flight per worker: using ${MAX_OBJECT_JOBS}`,
  );
  return MAX_OBJECT_JOBS;
}

async function migrateObjects(
  s: Session,
  location: string,
  o: ObjectFlags & { from: string; to: string; reproducedContext: string[] },
) {
  // Parsed as for files, before any key or object is touched: a bad pair is a usage error (exit 2).
  const reproduced = reproducedContext(o.reproducedContext);
  const { migrateObjectsCommand } = await import('@keyport/object-migrate');
  const [from, to] = (await s.uris([o.from, o.to])) as [string, string];
  const outcome = await migrateObjectsCommand(
    location,
    {
      from,
      to,
      keepSource: !o.removeSource,
      ...reproduced,
      ...objectEndpoints(s),
      ...(o.shard !== undefined ? { shard: o.shard } : {}),
      ...(o.maxRps !== undefined ? { maxRps: o.maxRps } : {}),
      ...(o.jobs !== undefined ? { jobs: o.jobs } : {}),
      ...(o.verify !== undefined ? { verify: o.verify } : {}),
      ...(o.journalPrefix !== undefined ? { journalPrefix: o.journalPrefix } : {}),
      ...(o.journalDir !== undefined ? { journalDir: s.path(o.journalDir) } : {}),
    },
    { keys: await s.keys([from, to]), ...s.callOptions },
  );
  await s.out.result(outcome.result, [...outcome.lines]);
  return outcome.exitCode;
}

async function objectStatus(s: Session, location: string, o: ObjectFlags & { from?: string; to?: string }) {
  if (!OBJECT_LOCATION.test(location))
    throw usageError('migrate status takes an object-store location (s3://, azblob://, gs://)');
  const { migrateObjectsStatusCommand } = await import('@keyport/object-migrate');
  const headers =
    o.from !== undefined && o.to !== undefined
      ? { headers: { from: await s.uri(o.from), to: await s.uri(o.to) } }
      : {};
  const outcome = await migrateObjectsStatusCommand(location, {
    ...objectEndpoints(s),
    ...headers,
    ...(o.journalPrefix !== undefined ? { journalPrefix: o.journalPrefix } : {}),
    ...(o.journalDir !== undefined ? { journalDir: s.path(o.journalDir) } : {}),
  });
  await s.out.result(outcome.result, [...outcome.lines]);
  return outcome.exitCode;
}

export function registerMigrateCommand(program: Command, act: Act): void {
  program
    .command('migrate')
    .description('move envelope files from one key to another: rewrap headers, verify, replace; resumable')
    .argument(
      '<target>',
      'a directory, a glob ("data/**/*.enc"), a manifest (one path per line), one file, an object-store location (s3://bucket/prefix, azblob://account/container/prefix, gs://bucket/prefix), or "status"',
    )
    .argument('[location]', 'with "status": the object-store location whose shards to report')
    .option('--from <uri>', 'the key the files are sealed for now')
    .option('--to <uri>', 'the key to add')
    .option('--remove-source', 'also remove the --from recipient', false)
    .option('--dry-run', 'report what would change, change nothing', false)
    .option('-j, --jobs <n>', 'files (objects) in flight at once (default: defaults.jobs, else 8)')
    .option('--journal <file>', `journal file (default ${DEFAULT_JOURNAL} in the working directory)`)
    .option('--progress-every <ms>', 'progress line interval when stderr is not a terminal', '5000')
    .option('--no-progress', 'no progress output')
    .option(
      '--follow-symlinks',
      'migrate the targets of symbolic links (default: report them as skipped)',
      false,
    )
    .option('--break-lock', "take over the journal's lock even if its holder may still run", false)
    .option(
      '--shard <i/n>',
      "object stores: this worker's shard (default from JOB_COMPLETION_INDEX / AWS_BATCH_JOB_ARRAY_INDEX)",
    )
    .option('--max-rps <n>', 'object stores: provider calls per second for this worker')
    .option('--verify <mode>', 'object stores: none, all or sample:N (open with the target key alone)')
    .option('--journal-prefix <prefix>', 'object stores: journal objects under this prefix in the bucket')
    .option('--journal-dir <dir>', 'object stores: journal files in this directory instead')
    .option(
      '--reproduced-context <k=v>',
      `${REPRODUCED_CONTEXT_HELP}; given to every file's (object's) rewrap and verification, and still left out of the migrated one`,
      collect,
      [],
    )
    .option(
      '--no-batch',
      "one call per data key even where the provider has a batch API (Vault's batch_input)",
    )
    .action(
      act(async (s, cmd) => {
        const o = cmd.opts<{
          from?: string;
          to?: string;
          removeSource: boolean;
          shard?: string;
          maxRps?: string;
          verify?: string;
          journalPrefix?: string;
          journalDir?: string;
          dryRun: boolean;
          jobs?: string;
          journal?: string;
          progressEvery: string;
          progress: boolean;
          batch: boolean;
          followSymlinks: boolean;
          breakLock: boolean;
          reproducedContext: string[];
        }>();
        const target = cmd.args[0] as string;
        if (target === 'status') return objectStatus(s, (cmd.args[1] as string | undefined) ?? '', o);
        if (cmd.args[1] !== undefined) throw usageError(`unexpected argument ${JSON.stringify(cmd.args[1])}`);
        if (o.from === undefined || o.to === undefined)
          throw usageError('migrate needs --from <uri> and --to <uri>');
        if (OBJECT_LOCATION.test(target)) {
          refuseFlags(cmd, FILE_ONLY_FLAGS, 'an object-store migration');
          const jobs =
            o.jobs !== undefined
              ? positiveInt(o.jobs, '--jobs', MAX_OBJECT_JOBS)
              : await objectJobsDefault(s);
          const { jobs: _, ...rest } = o;
          return migrateObjects(s, target, {
            ...rest,
            ...(jobs !== undefined ? { jobs: String(jobs) } : {}),
            from: o.from,
            to: o.to,
          });
        }
        refuseFlags(cmd, OBJECT_ONLY_FLAGS, 'files (only to s3://, azblob:// and gs:// locations)');
        // Parsed before any key, lock or file is touched: a bad pair is a usage error (exit 2).
        const reproduced = reproducedContext(o.reproducedContext);
        const [from, to] = (await s.uris([o.from, o.to])) as [string, string];
        const jobs =
          o.jobs !== undefined ? positiveInt(o.jobs, '--jobs', MAX_JOBS) : ((await s.defaults()).jobs ?? 8);
        const everyMs = positiveInt(o.progressEvery, '--progress-every', MAX_TIMER_MS);
        // A bar on a terminal, events with --json (started at the first update, when the total
        // is known), else a line every --progress-every ms.
        let display: Progress | undefined;
        let starting: Promise<Progress> | undefined;
        const logLine = s.out.json || s.io.stderrIsTTY ? undefined : progressLines(s.io.stderr, everyMs);
        const onProgress = (p: MigrateProgress): void => {
          if (logLine !== undefined) {
            logLine(p);
            return;
          }
          starting ??= startProgress(s, {
            command: 'migrate',
            unit: 'files',
            total: p.total,
            enabled: true,
          }).then((d) => {
            display = d;
            return d;
          });
          display?.update(p.done, { ...p });
        };
        // The providers are built once the target is known to name something: a glob that
        // matches nothing is exit 8 before any keystore, session or lock (files.ts).
        const summary = await runMigration(
          {
            from,
            to,
            followSymlinks: o.followSymlinks,
            breakLock: o.breakLock,
            onNote: (text) => void s.out.note(text),
            target,
            cwd: s.io.cwd,
            ...(o.journal !== undefined ? { journal: s.path(o.journal) } : {}),
            removeSource: o.removeSource,
            dryRun: o.dryRun,
            jobs,
            batch: o.batch,
            ...reproduced,
            ...(s.callOptions.timeoutMs !== undefined ? { timeoutMs: s.callOptions.timeoutMs } : {}),
            ...(s.io.signal !== undefined ? { signal: s.io.signal } : {}),
            ...(o.progress ? { onProgress } : {}),
          },
          () => s.keys([from, to]),
        );
        (await starting)?.finish();
        const lines = [
          summary.interrupted
            ? `interrupted after ${summary.done} of ${summary.total} files: run the same command again to continue`
            : o.dryRun
              ? `dry run: ${summary.wouldMigrate} of ${summary.total} files would be migrated`
              : `migrated ${summary.migrated} of ${summary.total} files in ${(summary.durationMs / 1000).toFixed(1)}s (${summary.filesPerSecond}/s)`,
          `  already done: ${summary.alreadyDone}, skipped: ${summary.skipped}, failed: ${summary.failed}`,
          `  provider calls per migrated file: ${summary.calls.perFile} (wrapping under --to: ${summary.calls.wrapPerFile})`,
          // File names and messages come from the tree walked: quoted and escaped, so a name
          // carrying an escape sequence cannot act on the terminal (JSON keeps them as they are).
          ...shownFiles(
            summary.skippedFiles,
            (f) => `  skipped ${quotePath(f.file)}: ${shown(f.reason)}`,
            'skipped',
          ),
          ...shownFiles(
            summary.failures,
            (f) => `  ${s.out.paint('red', 'failed')} ${quotePath(f.file)}: ${f.code} ${shown(f.message)}`,
            'failed',
          ),
        ];
        // A listed file that does not exist fails every run until the list (or the file) changes:
        // "run again" alone would not help it.
        const missing = summary.failures.filter((f) => f.code === 'FileNotFound').length;
        if (missing > 0)
          lines.push(
            `  ${missing} listed ${missing === 1 ? 'file does' : 'files do'} not exist: correct the list (or restore ${missing === 1 ? 'it' : 'them'}), then run again`,
          );
        if (summary.journal !== undefined && summary.failed > missing)
          lines.push(`  run the same command again to retry (journal ${quotePath(summary.journal)})`);
        await s.out.result({ ok: summary.failed === 0 && !summary.interrupted, ...summary }, lines);
        return summary.failed === 0 ? EXIT.ok : EXIT.failed;
      }),
    );
}

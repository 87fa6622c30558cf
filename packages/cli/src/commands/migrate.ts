/** `keyport migrate --from <uri> --to <uri> <dir|glob|manifest>`: resumable rewrap of envelope files. */
import type { Command } from 'commander';
import { positiveInt } from '../args.js';
import { EXIT } from '../exit-codes.js';
import type { MigrateProgress } from '../migrate/files.js';
import { DEFAULT_JOURNAL, migrateFiles } from '../migrate/files.js';
import { progressLines } from '../migrate/progress.js';
import type { Act } from '../program.js';
import { type Progress, startProgress } from '../progress.js';

export function registerMigrateCommand(program: Command, act: Act): void {
  program
    .command('migrate')
    .description('move envelope files from one key to another: rewrap headers, verify, replace; resumable')
    .argument('<target>', 'a directory, a glob ("data/**/*.enc"), a manifest (one path per line) or one file')
    .requiredOption('--from <uri>', 'the key the files are sealed for now')
    .requiredOption('--to <uri>', 'the key to add')
    .option('--remove-source', 'also remove the --from recipient', false)
    .option('--dry-run', 'report what would change, change nothing', false)
    .option('-j, --jobs <n>', 'files in flight at once (default 8)')
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
      '--no-batch',
      "one call per data key even where the provider has a batch API (Vault's batch_input)",
    )
    .action(
      act(async (s, cmd) => {
        const o = cmd.opts<{
          from: string;
          to: string;
          removeSource: boolean;
          dryRun: boolean;
          jobs?: string;
          journal?: string;
          progressEvery: string;
          progress: boolean;
          batch: boolean;
          followSymlinks: boolean;
          breakLock: boolean;
        }>();
        const [from, to] = (await s.uris([o.from, o.to])) as [string, string];
        const jobs = o.jobs !== undefined ? positiveInt(o.jobs, '--jobs') : ((await s.defaults()).jobs ?? 8);
        const keys = await s.keys([from, to]);
        // A bar on a terminal, events with --json (started at the first update, when the total
        // is known), else a line every --progress-every ms.
        let display: Progress | undefined;
        let starting: Promise<Progress> | undefined;
        const everyMs = positiveInt(o.progressEvery, '--progress-every');
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
        const summary = await migrateFiles({
          keys,
          from,
          to,
          followSymlinks: o.followSymlinks,
          breakLock: o.breakLock,
          onNote: (text) => void s.out.note(text),
          target: cmd.args[0] as string,
          cwd: s.io.cwd,
          ...(o.journal !== undefined ? { journal: s.path(o.journal) } : {}),
          removeSource: o.removeSource,
          dryRun: o.dryRun,
          jobs,
          batch: o.batch,
          ...(s.callOptions.timeoutMs !== undefined ? { timeoutMs: s.callOptions.timeoutMs } : {}),
          ...(s.io.signal !== undefined ? { signal: s.io.signal } : {}),
          ...(o.progress ? { onProgress } : {}),
        });
        (await starting)?.finish();
        const lines = [
          summary.interrupted
            ? `interrupted after ${summary.done} of ${summary.total} files: run the same command again to continue`
            : o.dryRun
              ? `dry run: ${summary.wouldMigrate} of ${summary.total} files would be migrated`
              : `migrated ${summary.migrated} of ${summary.total} files in ${(summary.durationMs / 1000).toFixed(1)}s (${summary.filesPerSecond}/s)`,
          `  already done: ${summary.alreadyDone}, skipped: ${summary.skipped}, failed: ${summary.failed}`,
          `  provider calls per migrated file: ${summary.calls.perFile} (wrapping under --to: ${summary.calls.wrapPerFile})`,
          ...summary.skippedFiles.map((f) => `  skipped ${JSON.stringify(f.file)}: ${f.reason}`),
          ...summary.failures
            .slice(0, 20)
            .map((f) => `  ${s.out.paint('red', 'failed')} ${f.file}: ${f.code} ${f.message}`),
        ];
        if (summary.journal !== undefined && summary.failed > 0)
          lines.push(`  run the same command again to retry (journal ${summary.journal})`);
        await s.out.result({ ok: summary.failed === 0 && !summary.interrupted, ...summary }, lines);
        return summary.failed === 0 ? EXIT.ok : EXIT.failed;
      }),
    );
}

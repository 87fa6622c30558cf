/**
 * `run(argv, io)`: the whole CLI as a function. Builds the commander program, runs the chosen
 * command, prints errors (code, key URI, next step; causes with --verbose) and returns the
 * exit code. It never calls process.exit, so tests run it in-process.
 */

import { escapeControl, KeyportError, MAX_TIMER_MS } from '@keyport/core';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { decimalInt } from './args.js';
import { findCliError } from './cli-errors.js';
import { registerAuditCommands } from './commands/audit.js';
import { registerCapabilitiesCommand } from './commands/capabilities.js';
import { registerCryptoCommands } from './commands/crypto.js';
import { registerDoctorCommand } from './commands/doctor.js';
import { registerGrantCommands } from './commands/grants.js';
import { registerImportCommand } from './commands/import.js';
import { registerKeyCommands } from './commands/keys.js';
import { registerMigrateCommand } from './commands/migrate.js';
import { registerPolicyCommands } from './commands/policy.js';
import { secretValues } from './credentials.js';
import { errorReport, formatErrorReport, usageError } from './errors.js';
import { EXIT } from './exit-codes.js';
import { type CliIo, writeText } from './io.js';
import { Output } from './output.js';
import { type GlobalOptions, Session } from './session.js';

export const VERSION = '0.1.0';

/** A command body: returns its exit code (0 when it returns nothing). */
export type Handler = (session: Session, cmd: Command) => Promise<number | undefined>;
export type Act = (handler: Handler) => (...args: unknown[]) => Promise<void>;

function parseTimeout(value: string): number {
  const n = decimalInt(value);
  // A Node timer's range: longer deadlines would fire at once.
  if (!Number.isInteger(n) || n <= 0 || n > MAX_TIMER_MS) {
    throw new InvalidArgumentError(`a whole number of milliseconds from 1 to ${MAX_TIMER_MS}`);
  }
  return n;
}

/** `--json` given before any `--` (known before commander has parsed anything). */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

/**
 * `onOutput` is given each write of commander's own text to stdout (help, version), so the
 * caller can wait for them: `keyport --help > /dev/full` must not exit 0 with nothing written.
 */
export function buildProgram(
  io: CliIo,
  act: Act,
  json = false,
  onOutput: (written: Promise<void>) => void = () => undefined,
): Command {
  const program = new Command('keyport')
    .description(
      'keys, envelope encryption and migrations across AWS KMS, Azure Key Vault, GCP KMS, Vault/OpenBao, PKCS#11 and local keystores',
    )
    .version(VERSION, '-V, --version')
    .option('-c, --config <file>', 'config file (default: keyport.config.json|yaml here, or KEYPORT_CONFIG)')
    .option('--json', 'one JSON result on stdout; errors as one JSON object on stderr', false)
    .option('-v, --verbose', 'show error causes', false)
    .option('--no-color', 'never colour the output')
    .addOption(new Option('--timeout <ms>', 'deadline for each provider operation').argParser(parseTimeout))
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => onOutput(writeText(io.stdout, s)),
      // With --json a usage error is reported as one JSON object by run(), not as text.
      // Its messages quote the arguments as given: control characters escaped, line by line, so
      // `keyport $'\e]0;…\a'` cannot drive the terminal (commander's own line breaks are kept).
      writeErr: (s) => (json ? true : io.stderr.write(s.split('\n').map(escapeControl).join('\n'))),
    })
    .addHelpText(
      'after',
      `
Exit codes: 0 ok, 1 operation failed, 2 usage/config error, 3 not found,
4 access denied/authentication, 5 provider unavailable/timeout, 6 integrity/invalid ciphertext,
7 migration locked, 8 file not found, 9 permission denied, 10 is a directory,
11 not a regular file, 12 output exists / is the input, 13 disk full, 14 read-only file system,
15 I/O error, 129 SIGHUP, 130 SIGINT, 141 stdout closed, 143 SIGTERM.
Secrets come from the environment or files named in the config, never from flags.`,
    );
  registerKeyCommands(program, act);
  registerCryptoCommands(program, act);
  registerGrantCommands(program, act);
  registerAuditCommands(program, act);
  registerCapabilitiesCommand(program, act);
  registerDoctorCommand(program, act);
  registerMigrateCommand(program, act);
  registerImportCommand(program, act);
  registerPolicyCommands(program, act);
  refuseRepeatedValues(program);
  return program;
}

/**
 * A flag that takes one value, given twice (`--jobs 2 --jobs 3`), is a usage error. Commander
 * keeps the last silently, and only some flags check each value as it comes (--timeout) while
 * the rest are checked once, at the end: `--jobs 0x10 --jobs 3` ran with 3 and `--timeout 0x10
 * --timeout 5` was refused. Repeatable flags (`--context`, `-r`, `--op a b`: a list default or
 * variadic) are left alone. Listens after commander's own handler, so the value is already set.
 */
function refuseRepeatedValues(cmd: Command): void {
  for (const option of cmd.options) {
    const takesValue = option.required || option.optional;
    if (!takesValue || option.variadic || Array.isArray(option.defaultValue)) continue;
    let given = false;
    cmd.on(`option:${option.name()}`, () => {
      if (given) {
        throw usageError(
          `${option.long ?? option.flags} is given twice: give it once (it takes a single value)`,
        );
      }
      given = true;
    });
  }
  for (const sub of cmd.commands) refuseRepeatedValues(sub);
}

function globalsOf(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals<{
    config?: string;
    json?: boolean;
    verbose?: boolean;
    color?: boolean;
    timeout?: number;
  }>();
  return {
    json: o.json === true,
    verbose: o.verbose === true,
    color: o.color !== false,
    ...(o.config !== undefined ? { config: o.config } : {}),
    ...(o.timeout !== undefined ? { timeout: o.timeout } : {}),
  };
}

/**
 * Whether this process has begun to print a failure: the bin's hard exit (a second signal, or a
 * command still busy after the first) then adds a note, never a second `--json` error object.
 */
let reported = false;
export function failureReported(): boolean {
  return reported;
}

/** Prints one failure (text, or one JSON object with --json) on stderr; returns its exit code. */
async function reportFailure(
  io: CliIo,
  argv: readonly string[],
  session: Session | undefined,
  error: unknown,
): Promise<number> {
  const json = session?.options.json ?? wantsJson(argv);
  const verbose = session?.options.verbose ?? (argv.includes('--verbose') || argv.includes('-v'));
  const out = session?.out ?? new Output(io, json, !argv.includes('--no-color'));
  const report = errorReport(error, verbose, session?.redactions() ?? secretValues(io.env));
  reported = true;
  if (json) await writeText(io.stderr, `${JSON.stringify({ error: report })}\n`);
  else await writeText(io.stderr, `keyport: ${formatErrorReport(report, (s) => out.paint('red', s))}`);
  return report.exitCode;
}

/** Commander's own message, without its "error: " prefix, as a usage error. */
function usageFailure(error: CommanderError): KeyportError {
  return new KeyportError('InvalidArgument', error.message.replace(/^error: /, ''));
}

export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  let session: Session | undefined;
  let code: number = EXIT.ok;
  const act: Act =
    (handler) =>
    async (...args) => {
      const cmd = args.at(-1) as Command;
      session = new Session(io, globalsOf(cmd));
      code = (await handler(session, cmd)) ?? EXIT.ok;
    };
  const json = wantsJson(argv);
  const printed: Promise<void>[] = [];
  const program = buildProgram(io, act, json, (written) => {
    // Settled here, reported below: a failed write is not an unhandled rejection meanwhile.
    written.catch(() => undefined);
    printed.push(written);
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    // A command that stopped early on a signal still ends with the signal's exit code.
    if (io.signal?.aborted === true) return await reportFailure(io, argv, session, io.signal.reason);
    return code;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (
        error.code === 'commander.helpDisplayed' ||
        error.code === 'commander.version' ||
        error.code === 'commander.help'
      ) {
        // Help or version printed: ok only once stdout took it (a full disk, a closed pipe fail).
        try {
          await Promise.all(printed);
        } catch (writeError) {
          return reportFailure(io, argv, session, writeError);
        }
        // Help shown instead of a command (`keyport`, `keyport keys`, `keyport help nosuch`: on
        // stderr, commander's exit code 1) is a usage error, not a success with no result; with
        // --json, one error object (the help text was not printed).
        if (error.exitCode !== 0) {
          if (!json) return EXIT.usage;
          return reportFailure(
            io,
            argv,
            session,
            usageError('no command given, or not a known one: run keyport --help for the commands'),
          );
        }
        return EXIT.ok;
      }
      if (error.code === 'commander.executeSubCommandAsync') return EXIT.ok;
      // Without --json commander has already printed its message; a bad option is a usage error.
      if (!json) return EXIT.usage;
      return reportFailure(io, argv, session, usageFailure(error));
    }
    const cause = io.signal?.aborted === true && findCliError(io.signal.reason) ? io.signal.reason : error;
    return reportFailure(io, argv, session, cause);
  } finally {
    await session?.close().catch(() => undefined);
  }
}

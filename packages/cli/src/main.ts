/**
 * Process entry of the `keyport` bin: real streams, signals, exit code.
 *
 * SIGINT / SIGTERM / SIGHUP abort the running command through `io.signal`: streams stop, temp
 * files are removed by the code that made them, the migration journal is flushed, and `run`
 * returns 130 / 143 / 129. A second signal, or a command still running a second after the first
 * (an SDK call that does not honour the abort), ends the process at once after removing every
 * live temp file: it dies by the signal itself (a shell reports 130 / 143 / 129), since
 * process.exit() would wait for work in libuv's thread pool (a keystore's scrypt) to finish. The journal stays consistent
 * because every record is fsynced before the step it describes.
 */
import { setMaxListeners } from 'node:events';
import { CliError } from './cli-errors.js';
import { errorReport } from './errors.js';
import { EXIT } from './exit-codes.js';
import { removeLiveTempsSync } from './files/temps.js';
import { releaseHeldLocksSync } from './migrate/lock.js';
import { failureReported, run, wantsJson } from './program.js';

const GRACE_MS = 900;

/**
 * The signals that stop a command the orderly way. SIGHUP (the terminal or SSH session closed)
 * too: Node's default for it ends the process on the spot, which left `decrypt`'s temp file —
 * plaintext — beside the target and a migration's temp files behind. (Node resets an inherited
 * "ignore", so `nohup` never kept a keyport running anyway.)
 */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type StopSignal = (typeof STOP_SIGNALS)[number];
const EXIT_OF: Readonly<Record<StopSignal, number>> = {
  SIGINT: EXIT.interrupted,
  SIGTERM: EXIT.terminated,
  SIGHUP: EXIT.hangup,
};
const ERROR_OF: Readonly<Record<StopSignal, 'Interrupted' | 'Terminated' | 'HungUp'>> = {
  SIGINT: 'Interrupted',
  SIGTERM: 'Terminated',
  SIGHUP: 'HungUp',
};

/** The --json line of a hard exit: the error object, or a note once one was reported. */
function hardExitLine(signal: StopSignal, why: string): string {
  if (failureReported()) return JSON.stringify({ note: why });
  return JSON.stringify({ error: errorReport(new CliError(ERROR_OF[signal], why), false) });
}

export async function main(argv: readonly string[]): Promise<void> {
  const controller = new AbortController();
  // One signal for the whole run, followed by every operation in flight (migrate --jobs 256
  // keeps hundreds): many listeners are expected here, not a leak.
  setMaxListeners(0, controller.signal);
  let first: StopSignal | undefined;
  const json = wantsJson(argv);
  const hardExit = (signal: StopSignal, why: string): void => {
    removeLiveTempsSync();
    releaseHeldLocksSync();
    // With --json stderr is NDJSON: the text line broke every parser, and a command stopped
    // before it reported anything left no error object at all. One already reported (the run is
    // past it, closing its providers) gets a note instead: still exactly one error object.
    process.stderr.write(json ? `${hardExitLine(signal, why)}\n` : `\nkeyport: ${why}\n`);
    for (const s of STOP_SIGNALS) process.removeAllListeners(s);
    process.kill(process.pid, signal);
    process.exit(EXIT_OF[signal]);
  };
  const onSignal = (signal: StopSignal): void => {
    if (first !== undefined) {
      hardExit(first, `${signal} again: stopped at once`);
      return;
    }
    first = signal;
    const code = EXIT_OF[signal];
    controller.abort(new CliError(ERROR_OF[signal], `stopped by ${signal}`));
    setTimeout(
      () => hardExit(signal, `still busy ${GRACE_MS} ms after ${signal} (exit ${code}): stopped`),
      GRACE_MS,
    ).unref();
  };
  // The reader of stdout went away (`keyport decrypt m.enc | head -c 10`): stop at once, like a
  // tool killed by SIGPIPE, instead of an unhandled 'error' event.
  // Any other write error (a full disk or /dev/full behind `>`, EIO) fails the write that met it,
  // and the command reports it as a file-system error (io.ts); rethrown here, it was an uncaught
  // exception: a stack trace and exit 1.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') return;
    removeLiveTempsSync();
    releaseHeldLocksSync();
    process.exit(EXIT.brokenPipe);
  });
  process.stderr.on('error', () => undefined);
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  const code = await run(argv, {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    stdoutIsTTY: process.stdout.isTTY === true,
    stderrIsTTY: process.stderr.isTTY === true,
    signal: controller.signal,
  });
  // Providers are closed by run(); exit now so a lingering SDK socket cannot hold the process.
  process.exit(code);
}

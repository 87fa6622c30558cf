/**
 * Process entry of the `keyport` bin: real streams, signals, exit code.
 *
 * SIGINT / SIGTERM abort the running command through `io.signal`: streams stop, temp files are
 * removed by the code that made them, the migration journal is flushed, and `run` returns 130 /
 * 143. A second signal, or a command still running a second after the first (an SDK call that
 * does not honour the abort), ends the process at once after removing every live temp file: it
 * dies by the signal itself (a shell reports 130 / 143), since process.exit() would wait for
 * work in libuv's thread pool (a keystore's scrypt) to finish. The journal stays consistent
 * because every record is fsynced before the step it describes.
 */
import { setMaxListeners } from 'node:events';
import { CliError } from './cli-errors.js';
import { EXIT } from './exit-codes.js';
import { removeLiveTempsSync } from './files/temps.js';
import { run } from './program.js';

const GRACE_MS = 900;

export async function main(argv: readonly string[]): Promise<void> {
  const controller = new AbortController();
  // One signal for the whole run, followed by every operation in flight (migrate --jobs 256
  // keeps hundreds): many listeners are expected here, not a leak.
  setMaxListeners(0, controller.signal);
  let first: 'SIGINT' | 'SIGTERM' | undefined;
  const hardExit = (signal: 'SIGINT' | 'SIGTERM', why: string): void => {
    removeLiveTempsSync();
    process.stderr.write(`\nkeyport: ${why}\n`);
    process.removeAllListeners('SIGINT');
    process.removeAllListeners('SIGTERM');
    process.kill(process.pid, signal);
    process.exit(signal === 'SIGINT' ? EXIT.interrupted : EXIT.terminated);
  };
  const onSignal = (signal: 'SIGINT' | 'SIGTERM'): void => {
    if (first !== undefined) {
      hardExit(first, `${signal} again: stopped at once`);
      return;
    }
    first = signal;
    const code = signal === 'SIGINT' ? EXIT.interrupted : EXIT.terminated;
    controller.abort(
      new CliError(signal === 'SIGINT' ? 'Interrupted' : 'Terminated', `stopped by ${signal}`),
    );
    setTimeout(
      () => hardExit(signal, `still busy ${GRACE_MS} ms after ${signal} (exit ${code}): stopped`),
      GRACE_MS,
    ).unref();
  };
  // The reader of stdout went away (`keyport decrypt m.enc | head -c 10`): stop at once, like a
  // tool killed by SIGPIPE, instead of an unhandled 'error' event.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    removeLiveTempsSync();
    process.exit(EXIT.brokenPipe);
  });
  process.stderr.on('error', () => undefined);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
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

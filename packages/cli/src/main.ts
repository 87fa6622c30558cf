/** Process entry of the `keyport` bin: real streams, signals, exit code. */
import { run } from './program.js';

export async function main(argv: readonly string[]): Promise<void> {
  const controller = new AbortController();
  const interrupt = (): void => controller.abort(new Error('interrupted'));
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
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

import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

// What both bins share: run only when invoked as the program, print the environment lines and
// one ready line once the server listens, stop cleanly on SIGTERM/SIGINT, exit 2 on bad usage.
export class UsageError extends Error {}

export interface Started {
  /** KEY=VALUE lines a shell can `eval` or a harness can parse. */
  env: Record<string, string>;
  /** The single line that says the server is ready (printed last). */
  ready: string;
  stop(): Promise<void>;
}

export function isMain(moduleUrl: string): boolean {
  try {
    return process.argv[1] !== undefined && moduleUrl === pathToFileURL(realpathSync(process.argv[1])).href;
  } catch {
    return false;
  }
}

export async function runCli(usage: string, argv: string[], start: (argv: string[]) => Promise<Started>) {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${usage}\n`);
    return;
  }
  let started: Started;
  try {
    started = await start(argv);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(
      e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
        ? `${message}\n\n${usage}\n`
        : `${message}\n`,
    );
    process.exit(2);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    started.stop().then(
      () => {
        process.stderr.write(`stopped (${signal})\n`);
        process.exit(0);
      },
      (e: unknown) => {
        process.stderr.write(`stop failed: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  // Ready only once the handlers are in place: a signal sent on reading the line must stop the
  // server cleanly, not meet the default action (killed, no exit code).
  const lines = Object.entries(started.env).map(([k, v]) => `${k}=${v}`);
  process.stdout.write(`${[...lines, started.ready].join('\n')}\n`);
}

export function parsePort(flag: string, value: string | undefined, fallback = 0): number {
  if (value === undefined) return fallback;
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65_535) throw new UsageError(`${flag} must be 0-65535`);
  return port;
}

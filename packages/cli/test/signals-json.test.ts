/**
 * `--json` keeps stderr NDJSON when a signal ends the process the hard way: a second signal, or
 * a command still busy 900 ms after the first (a step that cannot be aborted). That exit wrote
 * a text line (`keyport: still busy …`) and no error object, so a script parsing stderr met a
 * line that is not JSON and never learned why the command failed.
 *
 * The step that cannot be aborted here: reading a config from a FIFO whose writer sends nothing
 * (`--config <(…)` of a slow producer). The test holds the FIFO's write end open, so the read
 * waits in the thread pool until the process ends.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, HOOKS, ndjson, PASSPHRASE } from './support/cli.js';

interface Ended {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

/** Starts `--json keys list` reading its config from a new FIFO; resolves once it is reading. */
async function blockedOnConfig(): Promise<{
  child: ChildProcess;
  ended: Promise<Ended>;
  release: () => void;
}> {
  const dir = mkdtempSync(join(tmpdir(), 'keyport-json-signal-'));
  const fifo = join(dir, 'config.json');
  execFileSync('mkfifo', ['-m', '0600', fifo]);
  const child = spawn(
    process.execPath,
    ['--import', HOOKS, BIN, '--json', '--config', fifo, 'keys', 'list'],
    {
      cwd: dir,
      env: { PATH: process.env.PATH, KEYPORT_CLI_FROM_SOURCE: '1', KEYPORT_LOCAL_PASSPHRASE: PASSPHRASE },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const err: Buffer[] = [];
  child.stderr?.on('data', (c: Buffer) => err.push(c));
  const ended = new Promise<Ended>((resolve) =>
    child.once('exit', (code, signal) =>
      resolve({ code, signal, stderr: Buffer.concat(err).toString('utf8') }),
    ),
  );
  // A non-blocking open for writing fails (ENXIO) until the child has the FIFO open for reading.
  const deadline = Date.now() + 30_000;
  let writer: number | undefined;
  while (writer === undefined) {
    try {
      writer = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch {
      if (Date.now() > deadline) throw new Error('the child never opened its config');
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  // Let its read start (it waits for bytes the test never writes).
  await new Promise((r) => setTimeout(r, 200));
  return { child, ended, release: () => closeSync(writer as number) };
}

/** Every stderr line is JSON, and exactly one of them is an error object. */
function theErrorOf(stderr: string): Record<string, unknown> {
  const lines = ndjson(stderr);
  const errors = lines.filter((l) => 'error' in l);
  expect(errors, stderr).toHaveLength(1);
  return (errors[0] as { error: Record<string, unknown> }).error;
}

describe('--json: a hard exit on a signal still reports one error object', () => {
  it('still busy 900 ms after SIGTERM: the error object says Terminated, exit 143', async () => {
    const c = await blockedOnConfig();
    try {
      c.child.kill('SIGTERM');
      const r = await c.ended;
      expect(r.signal, r.stderr).toBe('SIGTERM');
      expect(theErrorOf(r.stderr)).toMatchObject({ code: 'Terminated', exitCode: 143 });
      expect(theErrorOf(r.stderr).message).toMatch(/still busy 900 ms after SIGTERM/);
    } finally {
      c.release();
    }
  }, 40_000);

  it('a second SIGINT: the error object says Interrupted, exit 130', async () => {
    const c = await blockedOnConfig();
    try {
      c.child.kill('SIGINT');
      await new Promise((r) => setTimeout(r, 100));
      c.child.kill('SIGINT');
      const r = await c.ended;
      expect(r.signal, r.stderr).toBe('SIGINT');
      expect(theErrorOf(r.stderr)).toMatchObject({ code: 'Interrupted', exitCode: 130 });
      expect(theErrorOf(r.stderr).message).toMatch(/SIGINT again: stopped at once/);
    } finally {
      c.release();
    }
  }, 40_000);
});

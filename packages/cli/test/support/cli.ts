/**
 * Test drivers: `runCli` runs the CLI in-process through `run(argv, io)`; `spawnCli` runs the
 * real bin (`bin/keyport.mjs`) from source in a child process with the TypeScript hooks.
 */
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import {
  isolateSofthsmToken,
  requireTarget,
  type TargetEnv,
  type TargetName,
} from '@keyport/conformance/harness';
import { openLocalKeystore } from '@keyport/local';
import { run } from '../../src/index.js';

export const PASSPHRASE = 'test passphrase, not a secret';
const cliRoot = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(cliRoot, 'bin/keyport.mjs');
export const HOOKS = join(cliRoot, 'test/support/register-ts.mjs');

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stdoutBytes: Buffer;
  readonly stderr: string;
}

export interface RunOptions {
  readonly cwd: string;
  readonly env?: Record<string, string | undefined>;
  readonly stdin?: Uint8Array | string;
  readonly tty?: boolean;
  /** stderr is a terminal (a stream that says isTTY, 120 columns): progress bars are drawn. */
  readonly stderrTty?: boolean;
}

function collector(): { stream: PassThrough; done: () => Buffer } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, done: () => Buffer.concat(chunks) };
}

export async function runCli(argv: readonly string[], o: RunOptions): Promise<CliResult> {
  const out = collector();
  const err = collector();
  if (o.stderrTty === true) Object.assign(err.stream, { isTTY: true, columns: 120 });
  const code = await run(argv, {
    stdin: Readable.from(o.stdin === undefined ? [] : [Buffer.from(o.stdin)]),
    stdout: out.stream,
    stderr: err.stream,
    env: { KEYPORT_LOCAL_PASSPHRASE: PASSPHRASE, ...o.env },
    cwd: o.cwd,
    stdoutIsTTY: o.tty === true,
    stderrIsTTY: o.stderrTty === true,
  });
  const stdoutBytes = out.done();
  return { code, stdout: stdoutBytes.toString('utf8'), stdoutBytes, stderr: err.done().toString('utf8') };
}

/** Whether every directory above `path` and the file itself are open to other users. */
function openToOthers(path: string): boolean {
  for (let p = path; ; p = dirname(p)) {
    if ((statSync(p).mode & 0o001) === 0) return false;
    if (dirname(p) === p) return true;
  }
}

/**
 * Lets other users traverse (o+x, no listing) every directory above `path`: a clone under a
 * private directory (`mktemp -d` makes 0700 ones) would otherwise hide the CLI's sources from the
 * unprivileged child. Only the search bit is added, never read; nothing is removed again, so
 * test files running in parallel cannot race on it.
 */
function traversableByOthers(path: string): void {
  for (let p = dirname(path); ; p = dirname(p)) {
    const mode = statSync(p).mode;
    if ((mode & 0o001) === 0) chmodSync(p, (mode & 0o7777) | 0o001);
    if (dirname(p) === p) return;
  }
}

/**
 * A Node binary another user can run: this one, or a copy of it in the temp dir when it lives
 * under a private directory (e.g. Node from `npx -y node@24` sits in root's ~/.npm).
 */
function nodeForOtherUsers(): string {
  if (openToOthers(process.execPath)) return process.execPath;
  const dir = join(tmpdir(), `keyport-test-node-${process.version}`);
  const copy = join(dir, 'node');
  try {
    if (statSync(copy).size === statSync(process.execPath).size) return copy;
  } catch {
    // not copied yet
  }
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(dir, 0o755);
  const tmp = `${copy}.${process.pid}`;
  copyFileSync(process.execPath, tmp);
  chmodSync(tmp, 0o755);
  renameSync(tmp, copy);
  return copy;
}

export function spawnCli(
  argv: readonly string[],
  o: RunOptions & { timeoutMs?: number; uid?: number; gid?: number },
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    if (o.uid !== undefined) {
      traversableByOthers(BIN);
      traversableByOthers(join(o.cwd, '.'));
    }
    const node = o.uid !== undefined ? nodeForOtherUsers() : process.execPath;
    const child = spawn(node, ['--import', HOOKS, BIN, ...argv], {
      cwd: o.cwd,
      ...(o.uid !== undefined ? { uid: o.uid } : {}),
      ...(o.gid !== undefined ? { gid: o.gid } : {}),
      env: {
        PATH: process.env.PATH,
        KEYPORT_CLI_FROM_SOURCE: '1',
        KEYPORT_LOCAL_PASSPHRASE: PASSPHRASE,
        ...o.env,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 30_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      resolve({
        code: code ?? -1,
        stdout: stdoutBytes.toString('utf8'),
        stdoutBytes,
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    child.stdin.end(o.stdin === undefined ? undefined : Buffer.from(o.stdin));
  });
}

/** A temp dir holding keyport.config.json for a cheap-to-open local keystore (scrypt 2^10). */
export async function localWorkspace(
  extraProviders: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
): Promise<{
  dir: string;
  keystore: string;
  uri: (name: string) => string;
}> {
  const dir = await mkdtemp(join(tmpdir(), 'keyport-cli-'));
  const keystore = join(dir, 'keys.kp');
  const p = await openLocalKeystore({
    path: keystore,
    passphrase: PASSPHRASE,
    create: true,
    kdf: { log2N: 10 },
  });
  await p.close?.();
  await writeFile(
    join(dir, 'keyport.config.json'),
    JSON.stringify({ providers: { local: { keystore: './keys.kp' }, ...extraProviders }, ...extra }, null, 2),
  );
  return { dir, keystore, uri: (name) => `local://${keystore}#${name}` };
}

/**
 * The harness's variables for a target (the vitest global setup started it and loaded
 * `.emulators/env` into process.env); fails, never skips, when the target is not running.
 * SoftHSM gets a token of this process's own first: tokens are not safe across processes.
 */
export function requireEmulator<T extends TargetName>(target: T): TargetEnv<T> {
  if (target === 'softhsm') isolateSofthsmToken();
  return requireTarget(target);
}

/** The NDJSON objects a --json run wrote on stderr (progress, note, result, error). */
export function ndjson(stderr: string): Array<Record<string, unknown>> {
  return stderr
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The `error` object of a failed --json run. */
export function jsonError(stderr: string): Record<string, unknown> & { code: string; message: string } {
  const found = ndjson(stderr).find((e) => 'error' in e);
  if (found === undefined) throw new Error(`no error object on stderr: ${stderr}`);
  return found.error as Record<string, unknown> & { code: string; message: string };
}

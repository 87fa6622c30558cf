/**
 * stdin as the input of encrypt / decrypt / rewrap, when it is not a pipe or a file: the real bin
 * in a child process, given the descriptor as its fd 0.
 *
 * - A directory (`keyport encrypt -o x.enc < some-dir`): Node gives a directory's stdin as an
 *   empty stream, so encrypt sealed zero bytes and exited 0, and decrypt blamed the message.
 * - A descriptor that cannot be read (here one opened write-only: EBADF; a terminal whose session
 *   hung up gives EIO the same way): the read error surfaced as a provider's "Internal" (exit 1).
 * - A terminal, for decrypt and rewrap (the message file forgotten): a message is binary, yet the
 *   command sat waiting for typed input behind a progress bar at 0 B.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { run } from '../src/index.js';
import { BIN, HOOKS, jsonError, localWorkspace, PASSPHRASE, runCli } from './support/cli.js';

let ws: Awaited<ReturnType<typeof localWorkspace>>;
let key: string;

beforeAll(async () => {
  ws = await localWorkspace();
  expect((await runCli(['keys', 'create', 'k'], { cwd: ws.dir })).code).toBe(0);
  key = ws.uri('k');
});

/** Runs the bin with `fd` as its stdin. */
function withStdin(fd: number, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', HOOKS, BIN, ...args], {
      cwd: ws.dir,
      env: { PATH: process.env.PATH, KEYPORT_CLI_FROM_SOURCE: '1', KEYPORT_LOCAL_PASSPHRASE: PASSPHRASE },
      stdio: [fd, 'ignore', 'pipe'],
    });
    const err: Buffer[] = [];
    child.stderr?.on('data', (c: Buffer) => err.push(c));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stderr: Buffer.concat(err).toString('utf8') }));
  });
}

/** The outputs named `<prefix>…` (and any temp) in the workspace. */
const outputs = async (prefix: string): Promise<string[]> =>
  (await readdir(ws.dir)).filter((n) => n.startsWith(prefix) || n.includes('.tmp'));

describe('stdin that is not a stream of bytes', () => {
  it('a directory as stdin is refused (IsADirectory, exit 10), never sealed as empty input', async () => {
    const dir = join(ws.dir, 'a-directory');
    await mkdir(dir);
    const fd = openSync(dir, 'r');
    try {
      const enc = await withStdin(fd, ['--json', 'encrypt', '-r', key, '-o', 'dir-out.enc']);
      expect(enc.code, enc.stderr).toBe(10);
      expect(jsonError(enc.stderr)).toMatchObject({ code: 'IsADirectory', exitCode: 10 });
      expect(jsonError(enc.stderr).message).toContain('stdin');
      const dec = await withStdin(fd, ['--json', 'decrypt', '-k', key, '-o', 'dir-out.txt']);
      expect(dec.code, dec.stderr).toBe(10);
      expect(jsonError(dec.stderr).code).toBe('IsADirectory');
      const rewrap = await withStdin(fd, [
        '--json',
        'rewrap',
        '-',
        '-k',
        key,
        '--add',
        key,
        '-o',
        'dir-out2.enc',
      ]);
      expect(rewrap.code, rewrap.stderr).toBe(10);
    } finally {
      closeSync(fd);
    }
    expect(await outputs('dir-out')).toEqual([]);
  });

  it('a read error of stdin is a file-system error naming stdin (FileIO, exit 15), not "Internal"', async () => {
    await writeFile(join(ws.dir, 'write-only'), '');
    const fd = openSync(join(ws.dir, 'write-only'), 'w');
    try {
      const enc = await withStdin(fd, ['--json', 'encrypt', '-r', key, '-o', 'eio-out.enc']);
      expect(enc.code, enc.stderr).toBe(15);
      const error = jsonError(enc.stderr);
      expect(error).toMatchObject({ code: 'FileIO', exitCode: 15 });
      expect(error.message).toMatch(/cannot read stdin: .*\(EBADF\)/);
      const text = await withStdin(fd, ['decrypt', '-k', key, '-o', 'eio-out.txt']);
      expect(text.code, text.stderr).toBe(15);
      expect(text.stderr).toContain('cannot read stdin');
      expect(text.stderr).not.toMatch(/Internal|provider/);
    } finally {
      closeSync(fd);
    }
    expect(await outputs('eio-out')).toEqual([]);
  });
});

/** Runs the CLI in-process with a terminal as stdin: one that has nothing to give yet, as a real one. */
async function fromTerminal(args: string[]): Promise<{ code: number; stderr: string }> {
  const stdin = Object.assign(new Readable({ read: () => undefined }), { isTTY: true });
  const stderr = new PassThrough();
  const err: Buffer[] = [];
  stderr.on('data', (c: Buffer) => err.push(c));
  const code = await run(args, {
    stdin,
    stdout: new PassThrough(),
    stderr,
    env: { KEYPORT_LOCAL_PASSPHRASE: PASSPHRASE },
    cwd: ws.dir,
    stdoutIsTTY: false,
    stderrIsTTY: false,
  });
  stdin.destroy();
  return { code, stderr: Buffer.concat(err).toString('utf8') };
}

describe('a terminal as stdin', () => {
  it('decrypt and rewrap refuse to read a message from a terminal (exit 2) instead of waiting', async () => {
    const dec = await fromTerminal(['--json', 'decrypt', '-k', key, '-o', 'tty-out.txt']);
    expect(dec.code, dec.stderr).toBe(2);
    expect(jsonError(dec.stderr).message).toContain('refusing to read a message from a terminal');
    const rewrap = await fromTerminal([
      '--json',
      'rewrap',
      '-',
      '-k',
      key,
      '--add',
      key,
      '-o',
      'tty-out.enc',
    ]);
    expect(rewrap.code, rewrap.stderr).toBe(2);
    expect(jsonError(rewrap.stderr).message).toContain('refusing to read a message from a terminal');
    expect(await outputs('tty-out')).toEqual([]);
  }, 10_000);

  it('encrypt still reads a terminal: typed text is a plaintext', async () => {
    const stdin = Object.assign(Readable.from([Buffer.from('typed\n')]), { isTTY: true });
    const out = new PassThrough();
    const code = await run(['encrypt', '-r', key, '-o', 'typed.enc'], {
      stdin,
      stdout: out,
      stderr: new PassThrough(),
      env: { KEYPORT_LOCAL_PASSPHRASE: PASSPHRASE },
      cwd: ws.dir,
      stdoutIsTTY: false,
      stderrIsTTY: false,
    });
    expect(code).toBe(0);
    const dec = await runCli(['decrypt', 'typed.enc', '-k', key], { cwd: ws.dir });
    expect(dec.stdout).toBe('typed\n');
  });
});

/**
 * stdin redirected from a regular file (`keyport encrypt -o x.enc < big.bin`) that is written to
 * while it is read: the file path's check (input-changed.test.ts) did not apply, so a file cut
 * or appended to mid-read was sealed as bytes it never held together, exit 0. A regular file on
 * fd 0 can be fstat'ed like any other: now the read ends with FileChanged (exit 12), naming stdin.
 * The real bin in a child process, given the file as its fd 0.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, truncateSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, type CliResult, HOOKS, jsonError, localWorkspace, PASSPHRASE, runCli } from './support/cli.js';

const CHUNK = 1024 * 1024;

/**
 * Runs the bin with `file` as its stdin; at its first progress event (stdin opened, a chunk
 * read) it is stopped, `meanwhile` runs, and it is let go on.
 */
function withChangingStdin(
  cwd: string,
  file: string,
  args: string[],
  meanwhile: () => void,
): Promise<CliResult> {
  const fd = openSync(file, 'r');
  return new Promise<CliResult>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', HOOKS, BIN, ...args], {
      cwd,
      env: { PATH: process.env.PATH, KEYPORT_CLI_FROM_SOURCE: '1', KEYPORT_LOCAL_PASSPHRASE: PASSPHRASE },
      stdio: [fd, 'pipe', 'pipe'],
    });
    closeSync(fd);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let done = false;
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stderr?.on('data', (c: Buffer) => {
      err.push(c);
      if (!done && Buffer.concat(err).toString().includes('{"progress"')) {
        done = true;
        child.kill('SIGSTOP');
        meanwhile();
        child.kill('SIGCONT');
      }
    });
    child.once('error', reject);
    child.once('close', (code) => {
      const stdoutBytes = Buffer.concat(out);
      resolve({
        code: code ?? -1,
        stdout: stdoutBytes.toString(),
        stdoutBytes,
        stderr: Buffer.concat(err).toString(),
      });
    });
  });
}

describe('stdin redirected from a file that changes while it is read', () => {
  it('encrypt < big.bin, the file cut mid-read: exit 12 (FileChanged, naming stdin), no output', async () => {
    const ws = await localWorkspace();
    expect((await runCli(['keys', 'create', 'k'], { cwd: ws.dir })).code).toBe(0);
    const file = join(ws.dir, 'big.bin');
    await writeFile(file, Buffer.alloc(96 * CHUNK, 1));
    const r = await withChangingStdin(
      ws.dir,
      file,
      ['--json', 'encrypt', '-o', 'big.enc', '-r', ws.uri('k')],
      () => truncateSync(file, 1000),
    );
    // Before: exit 0, "ok": true, a message of the old contents' first tens of MiB.
    expect(r.code, r.stderr).toBe(12);
    const error = jsonError(r.stderr);
    expect(error).toMatchObject({ code: 'FileChanged', exitCode: 12 });
    expect(error.message).toContain(
      `stdin changed while keyport ran (it was written to (${96 * CHUNK} bytes when read, 1000 now), seen at the end of its read): nothing was written`,
    );
    expect((await readdir(ws.dir)).filter((n) => n.includes('big.enc'))).toEqual([]);
  });

  it('encrypt < big.bin to stdout, the file grown mid-read: exit 12, saying the bytes on stdout are void', async () => {
    const ws = await localWorkspace();
    expect((await runCli(['keys', 'create', 'k'], { cwd: ws.dir })).code).toBe(0);
    const file = join(ws.dir, 'big.bin');
    await writeFile(file, Buffer.alloc(8 * CHUNK, 1));
    const r = await withChangingStdin(ws.dir, file, ['--json', 'encrypt', '-r', ws.uri('k')], () =>
      truncateSync(file, 9 * CHUNK),
    );
    expect(r.code, r.stderr).toBe(12);
    const error = jsonError(r.stderr);
    expect(error).toMatchObject({ code: 'FileChanged' });
    // Not "nothing was written": the reader of stdout already has part of a message.
    expect(r.stdoutBytes.length).toBeGreaterThan(0);
    expect(error.message).toContain(
      `stdin changed while keyport ran (it was written to (${8 * CHUNK} bytes when read, ${9 * CHUNK} now), seen at the end of its read): ${r.stdoutBytes.length} bytes had already been written to stdout: discard that output`,
    );
    expect(error.message).not.toContain('nothing was written');
  });

  it('an unchanged file as stdin still encrypts and decrypts (exit 0)', async () => {
    const ws = await localWorkspace();
    expect((await runCli(['keys', 'create', 'k'], { cwd: ws.dir })).code).toBe(0);
    const file = join(ws.dir, 'big.bin');
    await writeFile(file, Buffer.alloc(3 * CHUNK, 5));
    const enc = await withChangingStdin(
      ws.dir,
      file,
      ['--json', 'encrypt', '-o', 'big.enc', '-r', ws.uri('k')],
      () => undefined,
    );
    expect(enc.code, enc.stderr).toBe(0);
    const dec = await withChangingStdin(
      ws.dir,
      join(ws.dir, 'big.enc'),
      ['--json', 'decrypt', '-o', 'back.bin', '-k', ws.uri('k')],
      () => undefined,
    );
    expect(dec.code, dec.stderr).toBe(0);
  });
});

/**
 * An input file written to while `encrypt` reads it: truncated (a log rotated, a backup being
 * rewritten) or appended to, the bytes read are no state the file ever had as a whole. Before,
 * encrypt sealed them and exited 0 (a 300 MiB file cut to 1 MB mid-read gave a 45 MB message of
 * the old contents' start); now the read ends with FileChanged (exit 12), nothing written. A
 * chmod meanwhile (the change time moves, the contents do not) is no change.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, truncateSync } from 'node:fs';
import { chmod, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openInputFile } from '../src/files/input-file.js';
import { BIN, type CliResult, HOOKS, jsonError, localWorkspace, PASSPHRASE, runCli } from './support/cli.js';

const CHUNK = 1024 * 1024;

/** Reads the first chunk of `path`, runs `meanwhile`, then reads the rest. */
async function readWith(path: string, meanwhile: () => Promise<void> | void): Promise<number> {
  const input = await openInputFile(path);
  let bytes = 0;
  let first = true;
  try {
    for await (const chunk of input.data) {
      bytes += chunk.length;
      if (first) {
        first = false;
        await meanwhile();
      }
    }
  } finally {
    await input.close();
  }
  return bytes;
}

describe('an input file that changes while it is read', () => {
  it('truncated or appended to: FileChanged naming the file and what changed', async () => {
    const ws = await localWorkspace();
    const file = join(ws.dir, 'in.bin');
    await writeFile(file, Buffer.alloc(4 * CHUNK, 7));
    // Before: 1 MiB (and then 4 MiB + 5 bytes) were read, and the read ended as if all was well.
    await expect(readWith(file, () => truncateSync(file, 10))).rejects.toMatchObject({
      code: 'FileChanged',
      path: file,
      message: expect.stringContaining(
        `${JSON.stringify(file)} changed while keyport ran (it was written to (${4 * CHUNK} bytes when read, 10 now), seen at the end of its read): nothing was written`,
      ),
    });
    await writeFile(file, Buffer.alloc(4 * CHUNK, 7));
    await expect(readWith(file, () => appendFileSync(file, 'more!'))).rejects.toMatchObject({
      code: 'FileChanged',
    });
    // A change of mode only: the contents read are the file's.
    await writeFile(file, Buffer.alloc(4 * CHUNK, 7));
    await expect(readWith(file, () => chmod(file, 0o600))).resolves.toBe(4 * CHUNK);
  });

  it('keyport encrypt of a file truncated mid-read exits 12 (FileChanged), no output, no temp', async () => {
    const ws = await localWorkspace();
    await runCli(['keys', 'create', 'k'], { cwd: ws.dir });
    const file = join(ws.dir, 'big.bin');
    await writeFile(file, Buffer.alloc(96 * CHUNK, 1));
    // The real bin; stopped at its first progress event (the file opened, 1 MiB of it read),
    // the file cut, then let go on.
    const r = await new Promise<CliResult>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        ['--import', HOOKS, BIN, '--json', 'encrypt', 'big.bin', '-o', 'big.enc', '-r', ws.uri('k')],
        {
          cwd: ws.dir,
          env: { PATH: process.env.PATH, KEYPORT_CLI_FROM_SOURCE: '1', KEYPORT_LOCAL_PASSPHRASE: PASSPHRASE },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let cut = false;
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => {
        err.push(c);
        if (!cut && Buffer.concat(err).toString().includes('{"progress"')) {
          cut = true;
          child.kill('SIGSTOP');
          truncateSync(file, 1000);
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
    // Before: exit 0, "ok": true, a message of the first tens of MiB of the old contents.
    expect(r.code, r.stderr).toBe(12);
    expect(jsonError(r.stderr)).toMatchObject({ code: 'FileChanged', path: file });
    expect(r.stdout).toBe('');
    expect((await readdir(ws.dir)).filter((n) => n.includes('big.enc'))).toEqual([]);
  });
});

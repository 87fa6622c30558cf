/**
 * A path ending in "/" names a directory, as the system reads it: `-o backups/` (a directory
 * that does not exist yet) created a file named `backups` holding the output and exited 0, and an
 * input `notes.txt/` was read as notes.txt, because resolve() drops the trailing slash.
 */
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { jsonError, localWorkspace, runCli } from './support/cli.js';

let ws: Awaited<ReturnType<typeof localWorkspace>>;
let key: string;

beforeAll(async () => {
  ws = await localWorkspace();
  expect((await runCli(['keys', 'create', 'k'], { cwd: ws.dir })).code).toBe(0);
  key = ws.uri('k');
  await writeFile(join(ws.dir, 'notes.txt'), 'notes');
  expect((await runCli(['encrypt', 'notes.txt', '-o', 'notes.enc', '-r', key], { cwd: ws.dir })).code).toBe(
    0,
  );
});

describe('a trailing "/" on a file path', () => {
  it('-o naming a directory that does not exist is refused (exit 10), no file made', async () => {
    for (const args of [
      ['encrypt', 'notes.txt', '-r', key, '-o', 'backups/'],
      ['decrypt', 'notes.enc', '-k', key, '-o', 'backups/'],
      ['rewrap', 'notes.enc', '-k', key, '--add', key, '-o', 'backups/'],
    ]) {
      const r = await runCli(['--json', ...args], { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(10);
      expect(jsonError(r.stderr)).toMatchObject({ code: 'IsADirectory', path: join(ws.dir, 'backups/') });
    }
    expect(await readdir(ws.dir)).not.toContain('backups');
  });

  it('-o naming an existing file with a "/" after it is refused (exit 10), not taken as that file', async () => {
    const r = await runCli(['--json', 'encrypt', 'notes.txt', '-r', key, '-o', 'notes.enc/', '--force'], {
      cwd: ws.dir,
    });
    expect(r.code, r.stderr).toBe(10);
    expect(jsonError(r.stderr).code).toBe('IsADirectory');
  });

  it('an input file named with a "/" after it is not found (ENOTDIR, exit 8), as the system says', async () => {
    const r = await runCli(['--json', 'encrypt', 'notes.txt/', '-r', key, '-o', 'slash.enc'], {
      cwd: ws.dir,
    });
    expect(r.code, r.stderr).toBe(8);
    expect(jsonError(r.stderr)).toMatchObject({ code: 'FileNotFound', path: join(ws.dir, 'notes.txt/') });
    const inPlace = await runCli(['--json', 'encrypt', 'notes.txt/', '-r', key, '--in-place'], {
      cwd: ws.dir,
    });
    expect(inPlace.code, inPlace.stderr).toBe(8);
    expect(await readdir(ws.dir)).not.toContain('slash.enc');
  });
});

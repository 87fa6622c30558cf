/**
 * `keyport migrate` over files: each real file once, whatever names reach it (a symlinked
 * directory, a manifest naming it twice); a 0-byte file and `--dry-run` leave the tree as it was.
 */
import { lstat, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { localWorkspace, runCli } from './support/cli.js';
import { localKeys, sealFiles } from './support/seal.js';

async function setup(count: number) {
  const ws = await localWorkspace();
  for (const n of ['a', 'b']) await runCli(['keys', 'create', n], { cwd: ws.dir });
  const keys = await localKeys(ws.keystore);
  const digests = await sealFiles(keys, ws.uri('a'), join(ws.dir, 'data'), count);
  return { ws, keys, digests, a: ws.uri('a'), b: ws.uri('b') };
}

describe('--follow-symlinks: each real file once', () => {
  it('a target reached through a symlinked directory and a file link to a file in it: one file, migrated once', async () => {
    const { ws, a, b } = await setup(1);
    // `via` is another name of `data` (as a home directory reached through a link would be);
    // `link.enc` leads to the file the walk also finds under `via/`.
    await symlink(join(ws.dir, 'data'), join(ws.dir, 'via'));
    await symlink('f0000.enc', join(ws.dir, 'data', 'even', 'link.enc'));
    const r = await runCli(
      ['--json', 'migrate', '--from', a, '--to', b, 'via', '--follow-symlinks', '--jobs', '8'],
      {
        cwd: ws.dir,
      },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ total: 1, migrated: 1, alreadyDone: 0, failed: 0 });
    expect((await lstat(join(ws.dir, 'data', 'even', 'link.enc'))).isSymbolicLink()).toBe(true);
    expect((await readdir(join(ws.dir, 'data', 'even'))).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});

describe('edge files', () => {
  it('a manifest naming one file through two directory names: migrated once, no failure', async () => {
    const { ws, digests, a, b } = await setup(1);
    const [first] = [...digests.keys()] as [string];
    await symlink(join(ws.dir, 'data'), join(ws.dir, 'via'));
    await writeFile(join(ws.dir, 'list.txt'), 'data/even/f0000.enc\nvia/even/f0000.enc\n');
    const r = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'list.txt', '--jobs', '8'], {
      cwd: ws.dir,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ total: 1, migrated: 1, failed: 0 });
    expect((await lstat(first)).isFile()).toBe(true);
  });

  it('a 0-byte file is skipped and left as it was; --dry-run leaves the tree as it was', async () => {
    const { ws, a, b } = await setup(2);
    const empty = join(ws.dir, 'data', 'empty.enc');
    await writeFile(empty, '');
    const before = (await readdir(ws.dir, { recursive: true })).sort();
    const dry = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'data', '--dry-run'], {
      cwd: ws.dir,
    });
    expect(dry.code, dry.stderr).toBe(0);
    expect((await readdir(ws.dir, { recursive: true })).sort()).toEqual(before);
    const r = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'data'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ migrated: 2, skipped: 1 });
    expect((await stat(empty)).size).toBe(0);
    expect(await readFile(empty)).toEqual(Buffer.alloc(0));
  });
});

/**
 * `keyport migrate` over a tree holding names that are not UTF-8 (a Latin-1 archive): keyport's
 * paths are strings, which cannot name such a file, so it is skipped, and says why (rename it),
 * never "does not exist" for a file that is there, and a directory of such a name is reported
 * with its files unread, never "directory does not exist".
 */
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openEnvelope, sealEnvelope } from '@keyport/envelope';
import { describe, expect, it } from 'vitest';
import { localWorkspace, runCli } from './support/cli.js';
import { localKeys } from './support/seal.js';

/** `dir`/`prefix` + the Latin-1 byte é + `suffix`: a name that is not valid UTF-8. */
const latin1 = (dir: string, prefix: string, suffix: string): Buffer =>
  Buffer.concat([Buffer.from(join(dir, prefix)), Buffer.from([0xe9]), Buffer.from(suffix)]);

describe('names that are not UTF-8', () => {
  it('are skipped as such (rename them), never reported as missing; the other files migrate', async () => {
    const ws = await localWorkspace();
    for (const n of ['a', 'b']) await runCli(['keys', 'create', n], { cwd: ws.dir });
    const keys = await localKeys(ws.keystore);
    const data = join(ws.dir, 'data');
    await mkdir(data);
    const seal = () => sealEnvelope(Buffer.from('some plaintext'), { recipients: [ws.uri('a')], keys });
    await writeFile(join(data, 'ok.enc'), await seal());
    const badFile = latin1(data, 'caf', '.enc');
    const badFileBytes = await seal();
    await writeFile(badFile, badFileBytes);
    const badDir = latin1(data, 'r', 'sum');
    await mkdir(badDir);
    const inside = Buffer.concat([badDir, Buffer.from('/x.enc')]);
    const insideBytes = await seal();
    await writeFile(inside, insideBytes);

    for (const target of ['data', 'data/*.enc']) {
      const r = await runCli(['--json', 'migrate', '--from', ws.uri('a'), '--to', ws.uri('b'), target], {
        cwd: ws.dir,
      });
      expect(r.code, r.stderr).toBe(0);
      const s = JSON.parse(r.stdout);
      const reasons = (s.skippedFiles as Array<{ file: string; reason: string }>).map((f) => f.reason);
      // Before: "does not exist" (and "directory does not exist") for entries that are there.
      expect(reasons.join('\n')).not.toMatch(/does not exist/);
      expect(s.skippedFiles).toContainEqual({
        file: badFile.toString('utf8'),
        reason: 'its name is not valid UTF-8, so keyport cannot open it: rename it to UTF-8 and run again',
      });
      if (target === 'data')
        expect(s.skippedFiles).toContainEqual({
          file: badDir.toString('utf8'),
          reason:
            'a directory whose name is not valid UTF-8, so keyport cannot open it: rename it to UTF-8 and run again (its files were not read)',
        });
    }
    // Left as they were; the file with a UTF-8 name moved to --to.
    expect(Buffer.compare(await readFile(badFile), badFileBytes)).toBe(0);
    expect(Buffer.compare(await readFile(inside), insideBytes)).toBe(0);
    const ok = await openEnvelope(await readFile(join(data, 'ok.enc')), { trust: [ws.uri('b')], keys });
    expect(Buffer.from(ok.plaintext).toString()).toBe('some plaintext');
  });

  it('with --follow-symlinks, a link whose target path is not UTF-8 says so, never "does not exist"', async () => {
    const ws = await localWorkspace();
    for (const n of ['a', 'b']) await runCli(['keys', 'create', n], { cwd: ws.dir });
    const keys = await localKeys(ws.keystore);
    const seal = () => sealEnvelope(Buffer.from('some plaintext'), { recipients: [ws.uri('a')], keys });
    const outside = join(ws.dir, 'outside');
    await mkdir(outside);
    const target = latin1(outside, 'caf', '.enc');
    const targetBytes = await seal();
    await writeFile(target, targetBytes);
    const data = join(ws.dir, 'data');
    await mkdir(data);
    await symlink(target, join(data, 'link.enc'));
    const r = await runCli(
      ['--json', 'migrate', '--follow-symlinks', '--from', ws.uri('a'), '--to', ws.uri('b'), 'data'],
      { cwd: ws.dir },
    );
    expect(r.code, r.stderr).toBe(0);
    // Before: "symbolic link does not exist" for a link whose target is there.
    expect(JSON.parse(r.stdout).skippedFiles).toEqual([
      {
        file: join(data, 'link.enc'),
        reason:
          'symbolic link to a path that is not valid UTF-8, so keyport cannot open it: rename it to UTF-8 and run again',
      },
    ]);
    expect(Buffer.compare(await readFile(target), targetBytes)).toBe(0);
  });

  it('with --follow-symlinks, links to two directories whose names differ only in non-UTF-8 bytes: both walked', async () => {
    const ws = await localWorkspace();
    for (const n of ['a', 'b']) await runCli(['keys', 'create', n], { cwd: ws.dir });
    const keys = await localKeys(ws.keystore);
    const outside = join(ws.dir, 'outside');
    await mkdir(outside);
    const data = join(ws.dir, 'data');
    await mkdir(data);
    for (const [i, byte] of [0xe9, 0xe8].entries()) {
      const dir = Buffer.concat([Buffer.from(join(outside, 'r')), Buffer.from([byte]), Buffer.from('sum')]);
      await mkdir(dir);
      await writeFile(
        Buffer.concat([dir, Buffer.from('/x.enc')]),
        await sealEnvelope(Buffer.from(`plaintext ${i}`), { recipients: [ws.uri('a')], keys }),
      );
      await symlink(dir, join(data, `via${i}`));
    }
    const r = await runCli(
      ['--json', 'migrate', '--follow-symlinks', '--from', ws.uri('a'), '--to', ws.uri('b'), 'data'],
      { cwd: ws.dir },
    );
    expect(r.code, r.stderr).toBe(0);
    // Before: both links were "symbolic link does not exist", their files never read; and as
    // strings both real paths are "r\uFFFDsum": the second directory taken for a cycle.
    expect(JSON.parse(r.stdout)).toMatchObject({ total: 2, migrated: 2, skippedFiles: [] });
    for (const i of [0, 1]) {
      const opened = await openEnvelope(await readFile(join(data, `via${i}`, 'x.enc')), {
        trust: [ws.uri('b')],
        keys,
      });
      expect(Buffer.from(opened.plaintext).toString()).toBe(`plaintext ${i}`);
    }
  });

  it('a manifest line naming a file whose name is not UTF-8 says so, never "does not exist"', async () => {
    const ws = await localWorkspace();
    for (const n of ['a', 'b']) await runCli(['keys', 'create', n], { cwd: ws.dir });
    const keys = await localKeys(ws.keystore);
    const seal = () => sealEnvelope(Buffer.from('some plaintext'), { recipients: [ws.uri('a')], keys });
    const data = join(ws.dir, 'data');
    await mkdir(data);
    await writeFile(join(data, 'ok.enc'), await seal());
    const bad = latin1(data, 'caf', '.enc');
    const badBytes = await seal();
    await writeFile(bad, badBytes);
    // Relative lines, one absolute; a line for a non-UTF-8 name that is not there stays a
    // missing listed file (exit 1), as any other.
    await writeFile(
      join(ws.dir, 'list.txt'),
      Buffer.concat([
        Buffer.from('data/ok.enc\n  '),
        Buffer.from('data/caf'),
        Buffer.from([0xe9]),
        Buffer.from('.enc \r\n'),
        bad,
        Buffer.from('\n'),
      ]),
    );
    const r = await runCli(['--json', 'migrate', '--from', ws.uri('a'), '--to', ws.uri('b'), 'list.txt'], {
      cwd: ws.dir,
    });
    // Before: exit 1, the file "does not exist" (FileNotFound) though it is there.
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({ migrated: 1, failed: 0 });
    expect(s.skippedFiles).toEqual([
      {
        file: bad.toString('utf8'),
        reason: 'its name is not valid UTF-8, so keyport cannot open it: rename it to UTF-8 and run again',
      },
    ]);
    expect(Buffer.compare(await readFile(bad), badBytes)).toBe(0);

    await writeFile(join(ws.dir, 'gone.txt'), Buffer.concat([Buffer.from('data/gone'), Buffer.from([0xe9])]));
    const gone = await runCli(['--json', 'migrate', '--from', ws.uri('a'), '--to', ws.uri('b'), 'gone.txt'], {
      cwd: ws.dir,
    });
    expect(gone.code, gone.stderr).toBe(1);
  });
});

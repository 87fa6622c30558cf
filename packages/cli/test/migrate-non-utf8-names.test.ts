/**
 * `keyport migrate` over a tree holding names that are not UTF-8 (a Latin-1 archive): keyport's
 * paths are strings, which cannot name such a file, so it is skipped, and says why (rename it),
 * never "does not exist" for a file that is there, and a directory of such a name is reported
 * with its files unread, never "directory does not exist".
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
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
});

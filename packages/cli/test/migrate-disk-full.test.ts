/**
 * `keyport migrate` on a full disk: the temp copy's write fails with ENOSPC, which a file
 * descriptor reports without a path. The file fails as DiskFull (what the disk said, the code
 * exit 13 stands for elsewhere), never as a provider's "Internal: unexpected provider failure";
 * the original is untouched and no temp is left. Needs root to mount a small tmpfs, as
 * outputs.test.ts's disk-full tests do.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localWorkspace, runCli } from './support/cli.js';
import { localKeys } from './support/seal.js';

describe('migrate onto a full disk (a small tmpfs)', () => {
  let small: string;
  let ws: Awaited<ReturnType<typeof localWorkspace>>;
  beforeAll(async () => {
    ws = await localWorkspace();
    for (const n of ['a', 'b']) await runCli(['keys', 'create', n], { cwd: ws.dir });
    small = join(ws.dir, 'small');
    await mkdir(small);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', small]);
  });
  afterAll(() => {
    execFileSync('umount', [small]);
  });

  it('a temp copy that does not fit fails the file as DiskFull, the original untouched, no temp left', async () => {
    const keys = await localKeys(ws.keystore);
    // 160 KiB fits once; its rewrapped copy beside it does not.
    const sealed = await sealEnvelope(randomBytes(160 * 1024), { recipients: [ws.uri('a')], keys });
    const file = join(small, 'big.enc');
    await writeFile(file, sealed);
    const r = await runCli(['--json', 'migrate', '--from', ws.uri('a'), '--to', ws.uri('b'), small], {
      cwd: ws.dir,
    });
    expect(r.code, r.stderr).toBe(1);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({ ok: false, migrated: 0, failed: 1 });
    // Before: { code: 'Internal', message: 'unexpected provider failure (see cause)' }.
    expect(s.failures).toEqual([
      {
        file,
        code: 'DiskFull',
        message: `cannot write the migrated copy of ${JSON.stringify(file)}: no space left on the device (ENOSPC)`,
      },
    ]);
    expect(Buffer.compare(await readFile(file), sealed)).toBe(0);
    expect(await readdir(small)).toEqual(['big.enc']);
    // The text summary says it too.
    const text = await runCli(
      ['migrate', '--from', ws.uri('a'), '--to', ws.uri('b'), small, '--no-progress'],
      {
        cwd: ws.dir,
      },
    );
    expect(text.code).toBe(1);
    expect(text.stdout).toContain(
      `failed ${JSON.stringify(file)}: DiskFull cannot write the migrated copy of`,
    );
  });
});

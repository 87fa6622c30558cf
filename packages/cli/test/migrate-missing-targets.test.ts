/**
 * `keyport migrate` given what does not exist: a manifest (or list) naming a file that is not
 * there fails that file (exit 1, named with why), never "skipped" with exit 0; a glob that
 * matches nothing is an error (FileNotFound, exit 8) before the journal or any provider is built
 * or called (the lock, taken first, is released); an empty directory named as the target is
 * 0 of 0, exit 0.
 */
import { access, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { openEnvelope } from '@keyport/envelope';
import { describe, expect, it } from 'vitest';
import { migrateFiles } from '../src/index.js';
import { localWorkspace, runCli } from './support/cli.js';
import { localKeys, sealFiles, sha256 } from './support/seal.js';

async function setup(count: number) {
  const ws = await localWorkspace();
  for (const n of ['a', 'b']) await runCli(['keys', 'create', n], { cwd: ws.dir });
  const keys = await localKeys(ws.keystore);
  const digests = await sealFiles(keys, ws.uri('a'), join(ws.dir, 'data'), count);
  return { ws, keys, digests, a: ws.uri('a'), b: ws.uri('b'), files: [...digests.keys()] };
}

function errorOf(stderr: string): { code: string; message: string; exitCode: number; path?: string } {
  const lines = stderr.split('\n').filter((l) => l.startsWith('{"error"'));
  expect(lines, stderr).toHaveLength(1);
  return JSON.parse(lines[0] as string).error;
}

const exists = (p: string): Promise<boolean> =>
  access(p).then(
    () => true,
    () => false,
  );

describe('a listed file that does not exist', () => {
  it('the text summary names 20 failed files and counts the rest, never cutting them silently', async () => {
    const { ws, a, b, files } = await setup(1);
    const missing = Array.from({ length: 23 }, (_, i) =>
      join(ws.dir, 'gone', `m${String(i).padStart(2, '0')}.enc`),
    );
    await writeFile(join(ws.dir, 'list.txt'), `${[files[0], ...missing].join('\n')}\n`);
    const r = await runCli(['migrate', '--from', a, '--to', b, 'list.txt'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout.split('\n').filter((l) => l.includes('failed "')).length, r.stdout).toBe(20);
    // Before: the 21st to 23rd failures were simply not shown.
    expect(r.stdout).toContain('… and 3 more failed (--json lists them all)');
  });

  it('fails (FileNotFound, exit 1) and is named with why; the listed files that exist migrate', async () => {
    const { ws, keys, digests, a, b, files } = await setup(2);
    const typo = join(ws.dir, 'data', 'even', 'f0000.ecn');
    // A directory on the way that is a file (ENOTDIR) names nothing either.
    const through = join(files[0] as string, 'x.enc');
    await writeFile(join(ws.dir, 'list.txt'), `${files[0]}\n${files[1]}\ndata/even/f0000.ecn\n${through}\n`);
    const r = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'list.txt', '--remove-source'], {
      cwd: ws.dir,
    });
    // Before: both were "skipped" ("does not exist") and the run exited 0.
    expect(r.code, r.stderr).toBe(1);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({ ok: false, total: 4, migrated: 2, skipped: 0, failed: 2, skippedFiles: [] });
    expect(s.failures).toHaveLength(2);
    for (const missing of [typo, through]) {
      const failure = s.failures.find((f: { file: string }) => f.file === missing);
      expect(failure, JSON.stringify(s.failures)).toMatchObject({ code: 'FileNotFound' });
      expect(failure.message).toContain(`cannot migrate the listed file ${JSON.stringify(missing)}`);
      expect(failure.message).toContain('does not exist');
    }
    for (const [file, digest] of digests) {
      const opened = await openEnvelope(await readFile(file), { trust: [b], keys });
      expect(sha256(opened.plaintext)).toBe(digest);
    }
    // The text summary names the file and what to do.
    const text = await runCli(
      ['migrate', '--from', a, '--to', b, 'list.txt', '--remove-source', '--no-progress'],
      { cwd: ws.dir },
    );
    expect(text.code).toBe(1);
    expect(text.stdout).toContain(`failed ${JSON.stringify(typo)}: FileNotFound`);
    expect(text.stdout).toContain('2 listed files do not exist: correct the list');
    expect(text.stdout).not.toContain('run the same command again to retry');
    // A file already under --to is still "already done", not skipped or failed.
    expect(text.stdout).toContain('already done: 2, skipped: 0, failed: 2');
  });

  it('fails in a dry run too, and through the library API given a list of paths', async () => {
    const { ws, keys, a, b, files } = await setup(1);
    await writeFile(join(ws.dir, 'list.txt'), `${files[0]}\ngone.enc\n`);
    const dry = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'list.txt', '--dry-run'], {
      cwd: ws.dir,
    });
    expect(dry.code, dry.stderr).toBe(1);
    expect(JSON.parse(dry.stdout)).toMatchObject({
      dryRun: true,
      wouldMigrate: 1,
      failed: 1,
      skipped: 0,
      failures: [{ file: join(ws.dir, 'gone.enc'), code: 'FileNotFound' }],
    });
    const summary = await migrateFiles({
      keys,
      from: a,
      to: b,
      target: [files[0] as string, 'gone.enc'],
      cwd: ws.dir,
    });
    expect(summary).toMatchObject({
      migrated: 1,
      skipped: 0,
      failed: 1,
      failures: [{ file: join(ws.dir, 'gone.enc'), code: 'FileNotFound' }],
    });
  });

  it('migrated by an earlier run and removed since: fails on every rerun, saying the journal records it migrated', async () => {
    const { ws, a, b, files } = await setup(2);
    await writeFile(join(ws.dir, 'list.txt'), `${files[0]}\n${files[1]}\n`);
    const args = ['--json', 'migrate', '--from', a, '--to', b, 'list.txt', '--remove-source'];
    const first = await runCli(args, { cwd: ws.dir });
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ migrated: 2, failed: 0 });
    await rm(files[1] as string);
    // The file is the truth, not the journal: a file that is not there is not under --to.
    for (let run = 0; run < 2; run++) {
      const again = await runCli(args, { cwd: ws.dir });
      expect(again.code, again.stderr).toBe(1);
      const s = JSON.parse(again.stdout);
      expect(s).toMatchObject({ alreadyDone: 1, skipped: 0, failed: 1 });
      expect(s.failures[0]).toMatchObject({ file: files[1], code: 'FileNotFound' });
      // The second rerun too: the journal's `failed` line does not hide the earlier `replaced`.
      expect(s.failures[0].message).toContain('the journal records it migrated by an earlier run');
    }
  });
});

describe('a target that matches nothing', () => {
  it('a glob matching no file is FileNotFound (exit 8), saying what was looked for; no journal is written', async () => {
    const { ws, keys, a, b } = await setup(2);
    const r = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'data/**/*.ecn'], { cwd: ws.dir });
    // Before: "migrated 0 of 0 files", exit 0.
    expect(r.code, r.stdout).toBe(8);
    const error = errorOf(r.stderr);
    expect(error).toMatchObject({ code: 'FileNotFound', exitCode: 8, path: 'data/**/*.ecn' });
    expect(error.message).toContain('no file matches the pattern "data/**/*.ecn"');
    expect(error.message).toContain(`looked below ${JSON.stringify(join(ws.dir, 'data'))}`);
    expect(await exists(join(ws.dir, '.keyport-migrate.journal'))).toBe(false);
    // A dry run and the library API say the same.
    const dry = await runCli(['migrate', '--from', a, '--to', b, 'data/*.enc', '--dry-run'], { cwd: ws.dir });
    expect(dry.code).toBe(8);
    expect(dry.stderr).toContain('no file matches the pattern "data/*.enc"');
    await expect(
      migrateFiles({ keys, from: a, to: b, target: 'nothing-*.enc', cwd: ws.dir }),
    ).rejects.toMatchObject({ code: 'FileNotFound', path: 'nothing-*.enc' });
    expect(await exists(join(ws.dir, '.keyport-migrate.journal'))).toBe(false);
  });

  it('a glob matching no file is reported before any provider is built or called; the lock is released', async () => {
    // A Vault stand-in that counts what reaches it: the --to probe (a wrap) would be its first call.
    let calls = 0;
    const vault = createServer((_req, res) => {
      calls++;
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end('{"errors":["permission denied"]}');
    });
    await new Promise<void>((resolve) => vault.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = vault.address() as AddressInfo;
      const ws = await localWorkspace({ hcvault: { address: `http://127.0.0.1:${port}` } });
      await runCli(['keys', 'create', 'a'], { cwd: ws.dir });
      await mkdir(join(ws.dir, 'data'));
      await writeFile(join(ws.dir, 'data', 'f.enc'), 'a file the pattern misses');
      const env = { KEYPORT_VAULT_TOKEN: 'dummy' };
      const toVault = `hcvault://127.0.0.1:${port}/transit/keys/k`;
      const glob = await runCli(['--json', 'migrate', '--from', ws.uri('a'), '--to', toVault, 'data/*.ecn'], {
        cwd: ws.dir,
        env,
      });
      // Before: the probe wrapped under --to first (AccessDenied, exit 4) and the typo went unsaid.
      expect(glob.code, glob.stderr).toBe(8);
      expect(errorOf(glob.stderr)).toMatchObject({ code: 'FileNotFound', path: 'data/*.ecn' });
      expect(errorOf(glob.stderr).message).toContain('no file matches the pattern "data/*.ecn"');
      expect(calls).toBe(0);
      expect(await exists(join(ws.dir, '.keyport-migrate.journal.lock'))).toBe(false);
      // Nor is a provider built: a keystore that would refuse its passphrase is never opened.
      const unopened = await runCli(
        ['--json', 'migrate', '--from', ws.uri('a'), '--to', toVault, 'data/*.ecn'],
        { cwd: ws.dir, env: { ...env, KEYPORT_LOCAL_PASSPHRASE: 'not the passphrase' } },
      );
      expect(unopened.code, unopened.stderr).toBe(8);
      expect(calls).toBe(0);
    } finally {
      vault.closeAllConnections();
      await new Promise((resolve) => vault.close(resolve));
    }
  });

  it('a glob matching no file under a lock a live process holds is MigrationLocked (exit 7): the lock is looked at first', async () => {
    const { ws, a, b } = await setup(1);
    const lock = join(ws.dir, '.keyport-migrate.journal.lock');
    const holder = JSON.stringify({
      pid: process.pid,
      host: hostname(),
      startedAt: new Date().toISOString(),
      nonce: 'n1',
    });
    await writeFile(lock, holder);
    const r = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'data/*.ecn'], { cwd: ws.dir });
    // The lock is taken before the target is read, so that a run over a held tree of a million
    // files is not walked first (test/migrate-lock-order.test.ts): which pattern matches is not
    // known then. Before: FileNotFound, exit 8, after walking the tree.
    expect(r.code, r.stderr).toBe(7);
    expect(errorOf(r.stderr)).toMatchObject({ code: 'MigrationLocked', exitCode: 7 });
    expect(await readFile(lock, 'utf8')).toBe(holder);
    expect(await exists(join(ws.dir, '.keyport-migrate.journal'))).toBe(false);
  });

  it('an empty directory given by its name is 0 of 0 files, exit 0', async () => {
    const { ws, a, b } = await setup(0);
    await mkdir(join(ws.dir, 'inbox'));
    const r = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'inbox'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, total: 0, migrated: 0, failed: 0 });
  });
});

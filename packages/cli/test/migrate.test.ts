import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { kmsRecipient, openEnvelope, sealEnvelope } from '@keyport/envelope';
import { describe, expect, it } from 'vitest';
import { migrateCiphertexts, migrateFiles } from '../src/index.js';
import { peekMessage } from '../src/migrate/header-peek.js';
import { localWorkspace, runCli } from './support/cli.js';
import { localKeys, sealFiles, sha256 } from './support/seal.js';

async function setup(count: number) {
  const ws = await localWorkspace();
  for (const n of ['a', 'b']) await runCli(['keys', 'create', n], { cwd: ws.dir });
  const keys = await localKeys(ws.keystore);
  const digests = await sealFiles(keys, ws.uri('a'), join(ws.dir, 'data'), count);
  return { ws, keys, digests, a: ws.uri('a'), b: ws.uri('b') };
}

describe('migrate', () => {
  it('dry run changes nothing; a run migrates, verifies and is idempotent', async () => {
    const { ws, keys, digests, a, b } = await setup(12);
    const before = await readFile([...digests.keys()][0] as string);
    const dry = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'data', '--dry-run'], {
      cwd: ws.dir,
    });
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, wouldMigrate: 12, migrated: 0 });
    expect(await readFile([...digests.keys()][0] as string)).toEqual(before);

    const run = await runCli(
      ['--json', 'migrate', '--from', a, '--to', b, 'data', '--remove-source', '--jobs', '3'],
      { cwd: ws.dir },
    );
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ total: 12, migrated: 12, failed: 0, skipped: 0 });
    for (const [file, digest] of digests) {
      const opened = await openEnvelope(await readFile(file), { trust: [b], keys });
      expect(sha256(opened.plaintext)).toBe(digest);
      const peeked = await peekMessage(file);
      expect(peeked.kind === 'envelope' && peeked.edks.every((e) => !kmsRecipient(a).matches(e))).toBe(true);
    }
    const again = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'data', '--remove-source'], {
      cwd: ws.dir,
    });
    expect(JSON.parse(again.stdout)).toMatchObject({ migrated: 0, alreadyDone: 12 });
    // A fresh journal still finds nothing to do: the files themselves say they are migrated.
    const fresh = await runCli(
      ['--json', 'migrate', '--from', a, '--to', b, 'data', '--remove-source', '--journal', 'other.journal'],
      { cwd: ws.dir },
    );
    expect(JSON.parse(fresh.stdout)).toMatchObject({ migrated: 0, alreadyDone: 12 });
    const journalMismatch = await runCli(['migrate', '--from', a, '--to', b, 'data'], { cwd: ws.dir });
    expect(journalMismatch.code).toBe(2);
    expect(journalMismatch.stderr).toMatch(/belongs to another migration/);
  });

  it('keeps the source recipient without --remove-source; globs, manifests; skips non-envelopes', async () => {
    const { ws, keys, digests, a, b } = await setup(6);
    await writeFile(join(ws.dir, 'data', 'even', 'notes.txt'), 'plain text, not an envelope');
    const summary = await migrateFiles({
      keys,
      from: a,
      to: b,
      target: 'data/**/*.enc',
      cwd: ws.dir,
      jobs: 2,
    });
    // No onProgress given: the summary still counts every file settled, and its rate.
    expect(summary).toMatchObject({ total: 6, done: 6, migrated: 6, failed: 0 });
    expect(summary.filesPerSecond).toBeGreaterThan(0);
    for (const [file, digest] of digests) {
      const viaA = await openEnvelope(await readFile(file), { trust: [a], keys });
      expect(sha256(viaA.plaintext)).toBe(digest);
    }
    const files = [...digests.keys()];
    await writeFile(join(ws.dir, 'list.txt'), `# two files\n${files[0]}\n${files[1]}\n`);
    const manifest = await migrateFiles({
      keys,
      from: a,
      to: b,
      target: 'list.txt',
      cwd: ws.dir,
      removeSource: true,
      journal: 'm.journal',
    });
    expect(manifest).toMatchObject({ total: 2, migrated: 2 });
    const dir = await migrateFiles({
      keys,
      from: a,
      to: b,
      target: 'data',
      cwd: ws.dir,
      journal: 'd.journal',
    });
    expect(dir.skippedFiles).toEqual([
      { file: join(ws.dir, 'data', 'even', 'notes.txt'), reason: 'not an envelope message' },
    ]);
    expect(dir.alreadyDone).toBe(6);
    expect((await readdir(join(ws.dir, 'data', 'even'))).some((f) => f.endsWith('.tmp'))).toBe(false);
  });

  it('a directory or file whose name has glob characters is that path, not a pattern matching nothing', async () => {
    const ws = await localWorkspace();
    for (const n of ['a', 'b']) await runCli(['keys', 'create', n], { cwd: ws.dir });
    const keys = await localKeys(ws.keystore);
    // `[2024]` and `?` are glob characters; read as a pattern, this target matched no file and
    // the run reported "migrated 0 of 0 files", exit 0: a migration that silently did nothing.
    const digests = await sealFiles(keys, ws.uri('a'), join(ws.dir, 'archive [2024]?'), 4);
    const run = await runCli(
      ['--json', 'migrate', '--from', ws.uri('a'), '--to', ws.uri('b'), 'archive [2024]?', '--remove-source'],
      { cwd: ws.dir },
    );
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ total: 4, migrated: 4, failed: 0 });
    for (const [file, digest] of digests) {
      const opened = await openEnvelope(await readFile(file), { trust: [ws.uri('b')], keys });
      expect(sha256(opened.plaintext)).toBe(digest);
    }
    // One message named like a pattern: that file.
    const [one] = [...digests.keys()] as [string];
    const single = join(ws.dir, 'one*.enc');
    await writeFile(single, await readFile(one));
    const file = await runCli(
      ['--json', 'migrate', '--from', ws.uri('b'), '--to', ws.uri('a'), 'one*.enc', '--journal', 'j2'],
      { cwd: ws.dir },
    );
    expect(file.code, file.stderr).toBe(0);
    expect(JSON.parse(file.stdout)).toMatchObject({ total: 1, migrated: 1 });
    // A pattern that names no existing path is still a pattern.
    const glob = await runCli(
      [
        '--json',
        'migrate',
        '--from',
        ws.uri('b'),
        '--to',
        ws.uri('a'),
        'archive */**/*.enc',
        '--journal',
        'j3',
      ],
      { cwd: ws.dir },
    );
    expect(glob.code, glob.stderr).toBe(0);
    expect(JSON.parse(glob.stdout)).toMatchObject({ total: 4, migrated: 4 });
  });

  it('a glob is matched below the working directory, whose own name may hold glob characters', async () => {
    const ws = await localWorkspace();
    for (const n of ['a', 'b']) await runCli(['keys', 'create', n], { cwd: ws.dir });
    const keys = await localKeys(ws.keystore);
    // Run from `p*`; `pz` beside it must not be touched.
    const here = join(ws.dir, 'p*');
    const mine = await sealFiles(keys, ws.uri('a'), join(here, 'data'), 2);
    const theirs = await sealFiles(keys, ws.uri('a'), join(ws.dir, 'pz', 'data'), 2);
    const before = await Promise.all([...theirs.keys()].map((f) => readFile(f)));
    const run = await runCli(
      ['--json', 'migrate', '--from', ws.uri('a'), '--to', ws.uri('b'), 'data/*/*.enc', '--remove-source'],
      { cwd: here, env: { KEYPORT_CONFIG: join(ws.dir, 'keyport.config.json') } },
    );
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ total: 2, migrated: 2 });
    for (const file of mine.keys()) {
      const peeked = await peekMessage(file);
      expect(
        peeked.kind === 'envelope' && peeked.edks.every((e) => !kmsRecipient(ws.uri('a')).matches(e)),
      ).toBe(true);
    }
    expect(await Promise.all([...theirs.keys()].map((f) => readFile(f)))).toEqual(before);
    // An absolute pattern still works.
    const abs = await runCli(
      [
        '--json',
        'migrate',
        '--from',
        ws.uri('a'),
        '--to',
        ws.uri('b'),
        join(ws.dir, 'pz', '**', '*.enc'),
        '--journal',
        'j2',
      ],
      { cwd: here, env: { KEYPORT_CONFIG: join(ws.dir, 'keyport.config.json') } },
    );
    expect(abs.code, abs.stderr).toBe(0);
    expect(JSON.parse(abs.stdout)).toMatchObject({ total: 2, migrated: 2 });
  });

  it('large files of many frames or one big frame migrate whole: the body copied byte for byte', async () => {
    const { ws, keys, a, b } = await setup(0);
    const dir = join(ws.dir, 'big');
    await mkdir(dir);
    // Beside the CLI's 256 KiB read and write batches: many small frames, one frame larger than
    // a batch, a body just over one batch, and an empty one.
    const cases = [
      { size: 700_000, frameLength: 4096 },
      { size: 600_000, frameLength: 1024 * 1024 },
      { size: 262_145, frameLength: 512 },
      { size: 0, frameLength: 4096 },
    ];
    const files: Array<{ path: string; digest: string; sealed: Uint8Array; size: number }> = [];
    for (const [i, c] of cases.entries()) {
      const plaintext = randomBytes(c.size);
      const sealed = await sealEnvelope(plaintext, {
        recipients: [a],
        keys,
        frameLength: c.frameLength,
        context: { n: String(i) },
      });
      const path = join(dir, `big${i}.enc`);
      await writeFile(path, sealed);
      files.push({ path, digest: sha256(plaintext), sealed, size: c.size });
    }
    const summary = await migrateFiles({
      keys,
      from: a,
      to: b,
      target: 'big',
      cwd: ws.dir,
      removeSource: true,
    });
    expect(summary).toMatchObject({ total: cases.length, migrated: cases.length, failed: 0 });
    for (const f of files) {
      const now = await readFile(f.path);
      // Only the header changed: every frame (ciphertext and tag) is the old file's tail.
      let same = 0;
      while (same < now.length && now[now.length - 1 - same] === f.sealed[f.sealed.length - 1 - same]) same++;
      expect(same).toBeGreaterThan(f.size + 16);
      const opened = await openEnvelope(now, { trust: [b], keys });
      expect(sha256(opened.plaintext)).toBe(f.digest);
    }
  });

  it('a file written in place while it is migrated is read again, not replaced by its old bytes', async () => {
    const { ws, keys, digests, a, b } = await setup(1);
    const [file] = [...digests.keys()] as [string];
    const before = await readFile(file);
    // The same length under the same key: only the bytes differ (size alone would not tell).
    const second = randomBytes(200);
    const replacement = await sealEnvelope(second, { recipients: [a], keys, context: { file: '0' } });
    expect(replacement.length).toBe(before.length);
    let written = false;
    // Writes the file in place while its first copy is being wrapped under --to.
    const racing = new Proxy(keys, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (prop !== 'encrypt' || typeof value !== 'function')
          return typeof value === 'function' ? value.bind(target) : value;
        return async (...args: unknown[]) => {
          const context = (args[2] as { context?: Record<string, string> } | undefined)?.context;
          if (!written && context?.file === '0') {
            written = true;
            const h = await open(file, 'r+');
            await h.write(replacement, 0, replacement.length, 0);
            await h.close();
          }
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const summary = await migrateFiles({
      keys: racing,
      from: a,
      to: b,
      target: 'data',
      cwd: ws.dir,
      removeSource: true,
    });
    expect(written).toBe(true);
    expect(summary).toMatchObject({ migrated: 1, failed: 0 });
    const opened = await openEnvelope(await readFile(file), { trust: [b], keys });
    expect(sha256(opened.plaintext)).toBe(sha256(second));
  });

  it('a file whose key is missing fails, the others migrate, and the exit code is 1', async () => {
    const { ws, a, b, keys } = await setup(3);
    const otherKey = await runCli(['--json', 'keys', 'create', 'c'], { cwd: ws.dir });
    expect(otherKey.code).toBe(0);
    await sealFiles(keys, ws.uri('c'), join(ws.dir, 'data', 'c'), 1);
    await runCli(['keys', 'disable', a], { cwd: ws.dir });
    const r = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'data'], { cwd: ws.dir });
    expect(r.code).toBe(1);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({ failed: 3, skipped: 1 });
    expect(s.failures[0].code).toBe('KeyStateConflict');
    await runCli(['keys', 'enable', a], { cwd: ws.dir });
    const retry = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'data'], { cwd: ws.dir });
    expect(JSON.parse(retry.stdout)).toMatchObject({ migrated: 3, failed: 0 });
  });

  it('migrateCiphertexts re-encrypts provider ciphertexts in order, verified, with their new versions', async () => {
    const { keys, a, b } = await setup(0);
    const rows = await Promise.all(
      ['one', 'two', 'three', 'four', 'five'].map(async (v, i) => ({
        id: `row-${i}`,
        context: { row: String(i) },
        ciphertext: (await keys.encrypt(a, Buffer.from(v), { context: { row: String(i) } })).ciphertext,
      })),
    );
    await keys.rotateKey(b);
    const out = [];
    for await (const m of migrateCiphertexts(rows, a, b, { keys, jobs: 2 })) out.push(m);
    expect(out.map((m) => m.id)).toEqual(rows.map((r) => r.id));
    expect(out.every((m) => m.keyVersion === '2' && m.previousKeyVersion === '1')).toBe(true);
    const back = await keys.decrypt(b, out[2]?.ciphertext as Uint8Array, { context: { row: '2' } });
    expect(Buffer.from(back.plaintext).toString()).toBe('three');
    const wrongContext = migrateCiphertexts(
      [{ ...(rows[0] as (typeof rows)[0]), context: { row: 'x' } }],
      a,
      b,
      { keys },
    );
    await expect(wrongContext.next()).rejects.toMatchObject({ code: 'InvalidCiphertext' });
  });
});

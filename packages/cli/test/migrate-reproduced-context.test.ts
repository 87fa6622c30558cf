/**
 * `migrate --reproduced-context k=v`: messages sealed with `encrypt --context-not-stored` (the
 * ESDK's Required Encryption Context CMM) migrate like any other, given the pairs they left out.
 * The rewrap and the verification of every file get the pairs; the migrated file still leaves
 * them out (decrypt needs them back). A file whose unstored pairs are not the given ones fails
 * alone, with decrypt's error code, and is left as it was; the values never reach the journal or
 * the output. The flag parses as decrypt's does (exit 2 on misuse, before anything is touched).
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exitCodeFor } from '../src/exit-codes.js';
import { migrateFiles } from '../src/index.js';
import { jsonError, localWorkspace, runCli } from './support/cli.js';
import { localKeys } from './support/seal.js';

const SECRET = 'u-secret-7';

type Workspace = Awaited<ReturnType<typeof localWorkspace>>;

/** A local workspace with keys `k` (the files' key now) and `k2` (the target), and a `m/` directory. */
async function workspace(): Promise<Workspace> {
  const ws = await localWorkspace();
  for (const name of ['k', 'k2']) {
    const created = await runCli(['keys', 'create', name], { cwd: ws.dir });
    expect(created.code, created.stderr).toBe(0);
  }
  await mkdir(join(ws.dir, 'm'));
  return ws;
}

/** Seals `text` into `m/<name>` under `k` with `--context` pairs, the `notStored` keys left out. */
async function seal(
  ws: Workspace,
  name: string,
  text: string,
  context: readonly string[],
  notStored: readonly string[],
  suite = '0x0478',
): Promise<void> {
  const plain = join(ws.dir, `${name}.txt`);
  await writeFile(plain, text);
  const enc = await runCli(
    [
      'encrypt',
      plain,
      '-o',
      join('m', name),
      '-r',
      ws.uri('k'),
      '--suite',
      suite,
      ...context.flatMap((c) => ['--context', c]),
      ...notStored.flatMap((k) => ['--context-not-stored', k]),
    ],
    { cwd: ws.dir },
  );
  expect(enc.code, enc.stderr).toBe(0);
}

const migrate = (ws: Workspace, extra: readonly string[]) =>
  runCli(['--json', 'migrate', '--from', ws.uri('k'), '--to', ws.uri('k2'), ...extra, 'm'], { cwd: ws.dir });

const decrypt = (ws: Workspace, file: string, key: string, extra: readonly string[] = []) =>
  runCli(['--json', 'decrypt', join('m', file), '-k', ws.uri(key), ...extra], { cwd: ws.dir });

/** The journal's lines after its header: `{ f, s, why?, tmp? }`. */
async function journalEntries(
  ws: Workspace,
): Promise<Array<{ f: string; s: string; why?: string; tmp?: string }>> {
  const text = await readFile(join(ws.dir, '.keyport-migrate.journal'), 'utf8');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .slice(1)
    .map((l) => JSON.parse(l) as { f: string; s: string; why?: string; tmp?: string });
}

/** The last state the journal records for the file named `name` (under m/). */
function lastState(entries: ReadonlyArray<{ f: string; s: string }>, name: string): string | undefined {
  return entries.filter((e) => e.f.endsWith(`/m/${name}`)).at(-1)?.s;
}

describe('migrate --reproduced-context', () => {
  it('migrates files sealed with an unstored pair (both suites); the pair stays unstored and decrypt still needs it', async () => {
    const ws = await workspace();
    await seal(ws, 'a.enc', 'row 42', ['table=orders', `user=${SECRET}`], ['user']);
    await seal(ws, 'b.enc', 'row 43 (signed)', ['table=orders', `user=${SECRET}`], ['user'], '0x0578');
    const sealed = await readFile(join(ws.dir, 'm', 'a.enc'));

    // Without the pairs every file fails (decrypt's code), left as it was; the journal says so.
    const without = await migrate(ws, ['--remove-source']);
    expect(without.code, without.stderr).toBe(1);
    const failed = JSON.parse(without.stdout) as { failed: number; failures: Array<{ code: string }> };
    expect(failed.failed).toBe(2);
    expect(failed.failures.map((f) => f.code)).toEqual(['InvalidCiphertext', 'InvalidCiphertext']);
    expect((await readFile(join(ws.dir, 'm', 'a.enc'))).equals(sealed)).toBe(true);

    // The same journal, the pairs given: both migrate.
    const run = await migrate(ws, ['--remove-source', '--reproduced-context', `user=${SECRET}`]);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ ok: true, total: 2, migrated: 2, failed: 0 });

    for (const [file, text] of [
      ['a.enc', 'row 42'],
      ['b.enc', 'row 43 (signed)'],
    ] as const) {
      const migrated = await readFile(join(ws.dir, 'm', file));
      // Still left out of the file: the stored pair is there, the unstored one is not.
      expect(migrated.includes(Buffer.from(SECRET))).toBe(false);
      expect(migrated.includes(Buffer.from('orders'))).toBe(true);
      // Only k2 opens it now (--remove-source), and only with the pair given back.
      const without = await decrypt(ws, file, 'k2');
      expect(without.code, without.stderr).toBe(6);
      expect(without.stdout).toBe('');
      const wrong = await decrypt(ws, file, 'k2', ['--reproduced-context', 'user=u-other']);
      expect(wrong.code).toBe(6);
      const ok = await decrypt(ws, file, 'k2', ['--reproduced-context', `user=${SECRET}`]);
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toBe(text);
      // The pair given back counts as given for --require-context, as before the migration.
      const exact = await decrypt(ws, file, 'k2', [
        '--context',
        'table=orders',
        '--reproduced-context',
        `user=${SECRET}`,
        '--require-context',
      ]);
      expect(exact.code, exact.stderr).toBe(0);
      expect((await decrypt(ws, file, 'k', ['--reproduced-context', `user=${SECRET}`])).code).toBe(6);
    }
    // The values never reach the journal or the output (only keys may be named).
    expect(await readFile(join(ws.dir, '.keyport-migrate.journal'), 'utf8')).not.toContain(SECRET);
    expect(run.stdout + run.stderr).not.toContain(SECRET);
    // Run again: the files say they are migrated; no pair is needed to tell.
    const again = await migrate(ws, ['--remove-source']);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ migrated: 0, alreadyDone: 2, failed: 0 });
  });

  it('a file whose unstored pairs are not the given ones fails alone, with decrypt’s code, untouched; a run with its pairs migrates it', async () => {
    const ws = await workspace();
    await seal(ws, 'good.enc', 'good', ['table=orders', `user=${SECRET}`], ['user']);
    // Another value of the unstored pair.
    await seal(ws, 'other-user.enc', 'other user', ['table=orders', 'user=u-other'], ['user']);
    // The pair stored, with another value (refused before any unwrap).
    await seal(ws, 'stored.enc', 'stored', ['table=orders', 'user=u-stored'], []);
    // No unstored pair at all: the given pair was never bound to it.
    await seal(ws, 'plain.enc', 'plain', ['table=orders'], []);
    const failing = ['other-user.enc', 'stored.enc', 'plain.enc'];
    const before = new Map<string, Buffer>();
    for (const f of failing) before.set(f, await readFile(join(ws.dir, 'm', f)));

    const given = ['--reproduced-context', `user=${SECRET}`];
    // A dry run reads headers only: it cannot tell which pairs a file was bound to.
    const dry = await migrate(ws, [...given, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, wouldMigrate: 4, failed: 0 });
    const run = await migrate(ws, given);
    expect(run.code, run.stderr).toBe(1);
    const summary = JSON.parse(run.stdout) as {
      failures: Array<{ file: string; code: string; message: string }>;
    };
    expect(summary).toMatchObject({ ok: false, total: 4, migrated: 1, failed: 3 });
    for (const f of failing) {
      // decrypt with the same pair: its typed error (exit 6) is the file's failure code.
      const dec = await decrypt(ws, f, 'k', given);
      expect(dec.code, `${f}: ${dec.stderr}`).toBe(6);
      const code = jsonError(dec.stderr).code;
      const failure = summary.failures.find((x) => x.file.endsWith(`/m/${f}`));
      expect(failure, f).toMatchObject({ code });
      expect(exitCodeFor(failure?.code as Parameters<typeof exitCodeFor>[0])).toBe(6);
      expect(failure?.message).not.toContain(SECRET);
      expect((await readFile(join(ws.dir, 'm', f))).equals(before.get(f) as Buffer), f).toBe(true);
    }
    // The good file is migrated; no temp file is left beside the others.
    expect((await decrypt(ws, 'good.enc', 'k2', given)).stdout).toBe('good');
    expect((await readdir(join(ws.dir, 'm'))).sort()).toEqual([
      'good.enc',
      'other-user.enc',
      'plain.enc',
      'stored.enc',
    ]);
    // The journal: the good file replaced, each failing one ended as failed (with its code).
    const entries = await journalEntries(ws);
    expect(lastState(entries, 'good.enc')).toBe('replaced');
    for (const f of failing) {
      expect(lastState(entries, f), f).toBe('failed');
      const failedLine = entries.filter((e) => e.f.endsWith(`/m/${f}`)).at(-1);
      expect(failedLine?.why).toBe(summary.failures.find((x) => x.file.endsWith(`/m/${f}`))?.code);
    }
    expect(JSON.stringify(entries)).not.toContain(SECRET);

    // The same journal, the other file's pair: it migrates; the good one is already done.
    const rerun = await migrate(ws, ['--reproduced-context', 'user=u-other']);
    expect(rerun.code, rerun.stderr).toBe(1);
    expect(JSON.parse(rerun.stdout)).toMatchObject({ migrated: 1, alreadyDone: 1, failed: 2 });
    const moved = await decrypt(ws, 'other-user.enc', 'k2', ['--reproduced-context', 'user=u-other']);
    expect(moved.code, moved.stderr).toBe(0);
    expect(moved.stdout).toBe('other user');
    // And without the flag the files that store every pair migrate too.
    const last = await migrate(ws, []);
    expect(last.code, last.stderr).toBe(0);
    expect(JSON.parse(last.stdout)).toMatchObject({ migrated: 2, alreadyDone: 2, failed: 0 });
    expect(lastState(await journalEntries(ws), 'plain.enc')).toBe('replaced');
  });

  it('__proto__ is an ordinary key, as for decrypt; several unstored pairs are given one flag each', async () => {
    const ws = await workspace();
    await seal(ws, 'p.enc', 'tenant data', ['__proto__=x', 'tenant=t-1', 'table=t'], ['__proto__', 'tenant']);
    const partial = await migrate(ws, ['--reproduced-context', '__proto__=x']);
    expect(partial.code, partial.stderr).toBe(1);
    const run = await migrate(ws, [
      '--reproduced-context',
      '__proto__=x',
      '--reproduced-context',
      'tenant=t-1',
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ migrated: 1, failed: 0 });
    expect((await decrypt(ws, 'p.enc', 'k2')).code).toBe(6);
    const ok = await decrypt(ws, 'p.enc', 'k2', [
      '--reproduced-context',
      '__proto__=x',
      '--reproduced-context',
      'tenant=t-1',
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toBe('tenant data');
  });

  it('the library takes the pairs as reproducedContext', async () => {
    const ws = await workspace();
    await seal(ws, 'a.enc', 'lib', ['user=u-lib'], ['user']);
    const keys = await localKeys(ws.keystore);
    const summary = await migrateFiles({
      keys,
      from: ws.uri('k'),
      to: ws.uri('k2'),
      target: 'm',
      cwd: ws.dir,
      reproducedContext: { user: 'u-lib' },
    });
    expect(summary).toMatchObject({ migrated: 1, failed: 0 });
    const ok = await decrypt(ws, 'a.enc', 'k2', ['--reproduced-context', 'user=u-lib']);
    expect(ok.stdout).toBe('lib');
  });

  it('misuse is exit 2 naming the flag, before anything is touched: malformed, duplicated, reserved (object stores too)', async () => {
    const ws = await workspace();
    await seal(ws, 'a.enc', 'row', [`user=${SECRET}`], ['user']);
    const before = await readFile(join(ws.dir, 'm', 'a.enc'));
    for (const pairs of [
      ['novalue'],
      ['=v'],
      ['user=u-1', 'user=u-2'],
      [`user=${SECRET}`, `user=${SECRET}`],
      ['__proto__=1', '__proto__=2'],
      ['aws-crypto-public-key=AAAA'],
    ]) {
      const r = await migrate(
        ws,
        pairs.flatMap((p) => ['--reproduced-context', p]),
      );
      expect(r.code, `${pairs.join(' ')}: ${r.stderr}`).toBe(2);
      const error = jsonError(r.stderr);
      expect(error.code).toBe('InvalidArgument');
      expect(error.message).toContain('--reproduced-context');
      expect(error.message).not.toContain(SECRET);
      expect(r.stdout).toBe('');
    }
    // The same parser serves decrypt (and rewrap): a reserved key is refused there by flag too.
    const dec = await decrypt(ws, 'a.enc', 'k', ['--reproduced-context', 'aws-crypto-public-key=AAAA']);
    expect(dec.code, dec.stderr).toBe(2);
    expect(jsonError(dec.stderr).message).toContain('--reproduced-context');
    // Nothing was touched: no journal, no lock, the file as it was.
    expect((await readdir(ws.dir)).filter((n) => n.startsWith('.keyport-migrate'))).toEqual([]);
    expect((await readFile(join(ws.dir, 'm', 'a.enc'))).equals(before)).toBe(true);
    // An object-store location parses the flag the same way, before any key or object is
    // touched (its migration with the pairs: migrate-objects.test.ts).
    for (const pair of ['novalue', 'aws-crypto-public-key=AAAA']) {
      const objects = await runCli(
        [
          '--json',
          'migrate',
          '--from',
          ws.uri('k'),
          '--to',
          ws.uri('k2'),
          '--reproduced-context',
          pair,
          's3://bucket/prefix',
        ],
        { cwd: ws.dir },
      );
      expect(objects.code, objects.stderr).toBe(2);
      expect(jsonError(objects.stderr).message).toContain('--reproduced-context');
    }
  });

  it('migrate --help documents the flag', async () => {
    const ws = await localWorkspace();
    const help = await runCli(['migrate', '--help'], { cwd: ws.dir });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--reproduced-context <k=v>/);
  });
});

/**
 * `keyport migrate --remove-source` SIGKILLed at chosen points, with large files (several
 * frames, so a kill lands mid-file): before the first file (as soon as the lock exists), while a
 * temp file is being written, right after a file was renamed (between the rename and its journal
 * line, or just after it), and after some files were verified. After every kill each file is
 * either the old envelope (--from only) or the new one (--to only), opens to its plaintext, and
 * no file is empty or sealed for both; the next run takes the dead lock over and finishes; at
 * the end the journal shows each file replaced exactly once and no temp is left. Two runs of the
 * same tree at once (one journal, and one journal each) end the same way.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Keyport } from '@keyport/core';
import { kmsRecipient, openEnvelope, sealEnvelope } from '@keyport/envelope';
import { beforeAll, describe, expect, it } from 'vitest';
import { peekMessage } from '../src/migrate/header-peek.js';
import { BIN, HOOKS, localWorkspace, PASSPHRASE, runCli } from './support/cli.js';
import { localKeys, sha256 } from './support/seal.js';

const BIG = 4; // files of 6 MiB in 64 KiB frames
const SMALL = 40;

type Outcome = number | 'killed' | 'finished-first';

let ws: Awaited<ReturnType<typeof localWorkspace>>;
let keys: Keyport;
let a: string;
let b: string;

beforeAll(async () => {
  ws = await localWorkspace();
  for (const n of ['a', 'b']) expect((await runCli(['keys', 'create', n], { cwd: ws.dir })).code).toBe(0);
  keys = await localKeys(ws.keystore);
  a = ws.uri('a');
  b = ws.uri('b');
}, 60_000);

/** A fresh tree of BIG large and SMALL small files sealed for --from; file -> plaintext digest. */
async function tree(name: string): Promise<{ dir: string; digests: Map<string, string> }> {
  const dir = join(ws.dir, name);
  await mkdir(join(dir, 'data'), { recursive: true });
  const digests = new Map<string, string>();
  for (let i = 0; i < BIG + SMALL; i++) {
    const plaintext = randomBytes(i < BIG ? 6 * 1024 * 1024 : 100 + i * 37);
    const path = join(dir, 'data', `${i < BIG ? 'big' : 'small'}${String(i).padStart(3, '0')}.enc`);
    await writeFile(
      path,
      await sealEnvelope(plaintext, {
        recipients: [a],
        keys,
        frameLength: 64 * 1024,
        context: { i: String(i) },
      }),
    );
    digests.set(path, sha256(plaintext));
  }
  return { dir, digests };
}

const argsFor = (journal?: string) => [
  '--config',
  '../keyport.config.json',
  'migrate',
  '--from',
  a,
  '--to',
  b,
  '--remove-source',
  '--jobs',
  '4',
  '--no-progress',
  ...(journal !== undefined ? ['--journal', journal] : []),
  'data',
];

function start(cwd: string, args: string[]): { done: Promise<Outcome>; kill: () => boolean } {
  const child = spawn(process.execPath, ['--import', HOOKS, BIN, ...args], {
    cwd,
    env: { PATH: process.env.PATH, KEYPORT_CLI_FROM_SOURCE: '1', KEYPORT_LOCAL_PASSPHRASE: PASSPHRASE },
    stdio: 'ignore',
  });
  let killed = false;
  const done = new Promise<Outcome>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => resolve(killed ? 'killed' : (code ?? -1)));
  });
  return {
    done,
    kill: () => {
      if (child.exitCode !== null || child.signalCode !== null) return false;
      killed = true;
      return child.kill('SIGKILL');
    },
  };
}

/** Runs the migration and SIGKILLs it as soon as `when()` holds (polled); 'finished-first' if it never did. */
async function runUntil(cwd: string, args: string[], when: () => Promise<boolean>): Promise<Outcome> {
  const c = start(cwd, args);
  let exited = false;
  const done = c.done.then((o) => {
    exited = true;
    return o;
  });
  while (!exited) {
    if (await when().catch(() => false)) {
      c.kill();
      break;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  const outcome = await done;
  return outcome === 'killed' ? 'killed' : 'finished-first';
}

const temps = async (dir: string) => (await readdir(join(dir, 'data'))).filter((n) => n.includes('.tmp'));

/** Every file is the old envelope (--from only) or the new (--to only), whole, opening to its plaintext. */
async function expectOldOrNew(digests: Map<string, string>): Promise<{ old: number; migrated: number }> {
  const from = kmsRecipient(a);
  const to = kmsRecipient(b);
  let old = 0;
  let migrated = 0;
  for (const [file, digest] of digests) {
    const peeked = await peekMessage(file);
    expect(peeked.kind, file).toBe('envelope');
    if (peeked.kind !== 'envelope') continue;
    expect(peeked.edks, file).toHaveLength(1);
    const edk = peeked.edks[0] as never;
    const isNew = to.matches(edk);
    expect(isNew || from.matches(edk), file).toBe(true);
    const opened = await openEnvelope(await readFile(file), { trust: [isNew ? b : a], keys });
    expect(sha256(opened.plaintext), file).toBe(digest);
    if (isNew) migrated++;
    else old++;
  }
  return { old, migrated };
}

/** The journal's file lines: each file replaced exactly once and never touched after that. */
async function expectReplacedOnce(journal: string, files: Iterable<string>): Promise<void> {
  const entries = (await readFile(journal, 'utf8'))
    .trimEnd()
    .split('\n')
    .slice(1)
    .map((l) => JSON.parse(l) as { f: string; s: string });
  const replaced = new Map<string, number>();
  const after: string[] = [];
  for (const e of entries) {
    if ((replaced.get(e.f) ?? 0) > 0) after.push(`${e.f}: ${e.s}`);
    if (e.s === 'replaced') replaced.set(e.f, (replaced.get(e.f) ?? 0) + 1);
  }
  expect(after).toEqual([]);
  for (const f of files) expect(replaced.get(f), f).toBe(1);
}

async function finish(dir: string, args: string[], total: number): Promise<void> {
  const final = await runCli(['--json', ...args], { cwd: dir });
  expect(final.code, final.stderr).toBe(0);
  const summary = JSON.parse(final.stdout);
  expect(summary).toMatchObject({ total, failed: 0 });
  expect(summary.migrated + summary.alreadyDone).toBe(total);
}

describe('migrate --remove-source SIGKILLed at chosen points, then run again', () => {
  it('before the first file, mid-file, after a rename and after verifications: every file old or new, then all new exactly once', {
    timeout: 300_000,
  }, async () => {
    const { dir, digests } = await tree('points');
    const journal = join(dir, '.keyport-migrate.journal');
    const big = [...digests.keys()].filter((f) => f.includes('/big'));
    const inodes = new Map<string, number>();
    for (const f of big) inodes.set(f, (await stat(f)).ino);
    const journalText = () => readFile(journal, 'utf8').catch(() => '');
    const count = async (state: string) => (await journalText()).split(`"s":"${state}"`).length - 1;

    const points: Array<[string, () => Promise<boolean>]> = [
      // The lock is taken before anything else: no file is touched yet.
      ['lock taken', async () => (await readdir(dir)).includes('.keyport-migrate.journal.lock')],
      // A large file's temp has bytes: killed mid-file.
      [
        'mid-file',
        async () => {
          for (const t of await temps(dir))
            if (((await stat(join(dir, 'data', t)).catch(() => undefined))?.size ?? 0) > 0) return true;
          return false;
        },
      ],
      // A large file was renamed over: killed between the rename and its `replaced` line, or just after.
      [
        'after a rename',
        async () => {
          for (const f of big) if ((await stat(f)).ino !== inodes.get(f)) return true;
          return false;
        },
      ],
      ['after verifications', async () => (await count('verified')) >= 3],
      ['mid-file again', async () => (await temps(dir)).length > 0],
    ];
    const outcomes: string[] = [];
    for (const [name, when] of points) {
      const outcome = await runUntil(dir, argsFor(), when);
      outcomes.push(`${name}: ${outcome}`);
      // Whatever the kill interrupted: every file is the old envelope or the new one.
      await expectOldOrNew(digests);
      for (const f of big) {
        const now = (await stat(f)).ino;
        if (now !== inodes.get(f)) inodes.set(f, now);
      }
    }
    // Most points land while the run is alive (a fast run may finish before a late point).
    expect(outcomes.filter((o) => o.endsWith('killed')).length, outcomes.join('; ')).toBeGreaterThanOrEqual(
      3,
    );
    await finish(dir, argsFor(), digests.size);
    expect(await expectOldOrNew(digests)).toEqual({ old: 0, migrated: digests.size });
    expect(await temps(dir)).toEqual([]);
    expect(await readdir(dir)).not.toContain('.keyport-migrate.journal.lock');
    await expectReplacedOnce(journal, digests.keys());
  });

  it('killed at increasing delays, each time resumed: never a partial file, nothing lost', {
    timeout: 300_000,
  }, async () => {
    const { dir, digests } = await tree('delays');
    const journal = join(dir, '.keyport-migrate.journal');
    const lines = async () => (await readFile(journal, 'utf8').catch(() => '')).split('\n').length - 1;
    // Kill after the journal grows by a few more lines each time (varied points in varied files).
    for (const grow of [1, 2, 5, 9, 14, 20]) {
      const at = (await lines()) + grow;
      await runUntil(dir, argsFor(), async () => (await lines()) >= at);
      await expectOldOrNew(digests);
    }
    await finish(dir, argsFor(), digests.size);
    expect(await expectOldOrNew(digests)).toEqual({ old: 0, migrated: digests.size });
    expect(await temps(dir)).toEqual([]);
    await expectReplacedOnce(journal, digests.keys());
  });
});

describe('two migrate runs of the same tree at once', () => {
  it('on one journal: one migrates, the other exits 7; each journal of its own: both finish; every file new once', {
    timeout: 300_000,
  }, async () => {
    const one = await tree('same-journal');
    const [x, y] = await Promise.all([start(one.dir, argsFor()).done, start(one.dir, argsFor()).done]);
    // One migrates; the other exits 7 on the lock (or, started after the first ended, finds all done).
    expect([x, y]).toContain(0);
    for (const o of [x, y]) expect([0, 7]).toContain(o);
    expect(await expectOldOrNew(one.digests)).toEqual({ old: 0, migrated: one.digests.size });
    expect(await temps(one.dir)).toEqual([]);
    await expectReplacedOnce(join(one.dir, '.keyport-migrate.journal'), one.digests.keys());

    const two = await tree('own-journals');
    const outcomes = await Promise.all([
      start(two.dir, argsFor('j1')).done,
      start(two.dir, argsFor('j2')).done,
    ]);
    expect(outcomes).toEqual([0, 0]);
    expect(await expectOldOrNew(two.digests)).toEqual({ old: 0, migrated: two.digests.size });
    expect(await temps(two.dir)).toEqual([]);
    // Each file was replaced by exactly one of the runs; the other found it done (or lost the race).
    const replacedBy = new Map<string, number>();
    for (const j of ['j1', 'j2']) {
      for (const l of (await readFile(join(two.dir, j), 'utf8')).trimEnd().split('\n').slice(1)) {
        const e = JSON.parse(l) as { f: string; s: string };
        if (e.s === 'replaced') replacedBy.set(e.f, (replacedBy.get(e.f) ?? 0) + 1);
      }
    }
    for (const f of two.digests.keys()) expect(replacedBy.get(f), f).toBeGreaterThanOrEqual(1);
  });
});

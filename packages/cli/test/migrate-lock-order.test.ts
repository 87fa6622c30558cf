/**
 * The journal's lock is taken before `migrate` reads its target: a second run over a tree whose
 * lock is held exits 7 without walking it (a tree of a million files is not read to learn that);
 * a glob that matches nothing is still reported (exit 8) before any provider is built, and the
 * lock it took is released; Ctrl-C stops the walk and releases the lock, and so does the hard
 * exit of a run that cannot stop (its target a FIFO nobody writes).
 *
 * Which files the walk reads is counted through node:fs/promises (the same functions, counted):
 * what a run read is not otherwise observable from outside, and timing would not be robust.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { access, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { migrateFiles } from '../src/index.js';
import { runMigration } from '../src/migrate/files.js';
import { BIN, HOOKS, localWorkspace, PASSPHRASE, runCli } from './support/cli.js';
import { localKeys, sealFiles } from './support/seal.js';

const watched = vi.hoisted(() => ({
  /** Paths at or below this one are recorded when a counted function is called on them. */
  under: undefined as string | undefined,
  calls: [] as Array<{ fn: string; path: string }>,
  /** Called on each counted readdir below `under` (before it runs). */
  onReaddir: undefined as ((path: string) => void) | undefined,
}));

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const counted =
    <A extends unknown[], R>(fn: string, f: (...args: A) => R) =>
    (...args: A): R => {
      const path = String(args[0]);
      const under = watched.under;
      if (under !== undefined && (path === under || path.startsWith(`${under}/`))) {
        watched.calls.push({ fn, path });
        if (fn === 'readdir') watched.onReaddir?.(path);
      }
      return f(...args);
    };
  return {
    ...real,
    readdir: counted('readdir', real.readdir),
    stat: counted('stat', real.stat),
    lstat: counted('lstat', real.lstat),
    realpath: counted('realpath', real.realpath),
    open: counted('open', real.open),
  };
});

async function setup(count: number) {
  const ws = await localWorkspace();
  for (const n of ['a', 'b']) await runCli(['keys', 'create', n], { cwd: ws.dir });
  const keys = await localKeys(ws.keystore);
  await sealFiles(keys, ws.uri('a'), join(ws.dir, 'data'), count);
  return {
    ws,
    keys,
    a: ws.uri('a'),
    b: ws.uri('b'),
    data: join(ws.dir, 'data'),
    lock: join(ws.dir, '.keyport-migrate.journal.lock'),
  };
}

/** A lock held by a live process on this host: this test's own. */
async function holdLock(lock: string): Promise<string> {
  const holder = JSON.stringify({
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    nonce: 'n1',
  });
  await writeFile(lock, holder);
  return holder;
}

function errorOf(stderr: string): { code: string; exitCode: number; path?: string; message: string } {
  const lines = stderr.split('\n').filter((l) => l.startsWith('{"error"'));
  expect(lines, stderr).toHaveLength(1);
  return JSON.parse(lines[0] as string).error;
}

const exists = (p: string): Promise<boolean> =>
  access(p).then(
    () => true,
    () => false,
  );

/** Runs `f` counting the calls on paths at or below `under`; the count is reset first. */
async function counting<T>(
  under: string,
  f: () => Promise<T>,
): Promise<{ result: T; calls: typeof watched.calls }> {
  watched.under = under;
  watched.calls = [];
  try {
    return { result: await f(), calls: [...watched.calls] };
  } finally {
    watched.under = undefined;
    watched.onReaddir = undefined;
  }
}

describe('a held lock is reported before the target is read', () => {
  it.each([
    ['a directory', 'data'],
    ['a glob', 'data/**/*.enc'],
  ])('%s whose journal lock a live run holds: exit 7, the tree never read', async (_, target) => {
    const { ws, a, b, data, lock } = await setup(4);
    const holder = await holdLock(lock);
    const { result: r, calls } = await counting(data, () =>
      runCli(['--json', 'migrate', '--from', a, '--to', b, target], { cwd: ws.dir }),
    );
    expect(r.code, r.stderr).toBe(7);
    expect(errorOf(r.stderr)).toMatchObject({ code: 'MigrationLocked', exitCode: 7 });
    // Before: the whole tree was walked (readdir of data, data/even, data/odd), then exit 7.
    expect(calls).toEqual([]);
    expect(await readFile(lock, 'utf8')).toBe(holder);
    expect(await exists(join(ws.dir, '.keyport-migrate.journal'))).toBe(false);
  });

  it('a glob that matches nothing under a held lock is exit 7 (the lock is looked at first)', async () => {
    const { ws, a, b, data, lock } = await setup(1);
    const holder = await holdLock(lock);
    const { result: r, calls } = await counting(data, () =>
      runCli(['--json', 'migrate', '--from', a, '--to', b, 'data/*.ecn'], { cwd: ws.dir }),
    );
    // Before: FileNotFound (exit 8), found by walking the tree before the lock was looked at.
    expect(r.code, r.stderr).toBe(7);
    expect(errorOf(r.stderr)).toMatchObject({ code: 'MigrationLocked', exitCode: 7 });
    expect(calls).toEqual([]);
    expect(await readFile(lock, 'utf8')).toBe(holder);
  });

  it('a dry run takes no lock and is not stopped by one', async () => {
    const { ws, a, b, lock } = await setup(2);
    await holdLock(lock);
    const r = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'data', '--dry-run'], {
      cwd: ws.dir,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ wouldMigrate: 2 });
  });
});

describe('a glob that matches nothing, the lock free', () => {
  it('is exit 8 before any provider is built, and releases the lock: the next run takes it', async () => {
    const { ws, keys, a, b, lock } = await setup(3);
    let built = 0;
    await expect(
      runMigration({ from: a, to: b, target: 'data/*.ecn', cwd: ws.dir }, async () => {
        built++;
        return keys;
      }),
    ).rejects.toMatchObject({ code: 'FileNotFound', path: 'data/*.ecn' });
    expect(built).toBe(0);
    expect(await exists(lock)).toBe(false);
    // The CLI the same: exit 8, and a run right after takes the lock and migrates.
    const glob = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'data/*.ecn'], { cwd: ws.dir });
    expect(glob.code, glob.stderr).toBe(8);
    expect(errorOf(glob.stderr)).toMatchObject({ code: 'FileNotFound', path: 'data/*.ecn' });
    expect(await exists(lock)).toBe(false);
    const next = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'data/**/*.enc'], {
      cwd: ws.dir,
    });
    expect(next.code, next.stderr).toBe(0);
    expect(JSON.parse(next.stdout)).toMatchObject({ migrated: 3, failed: 0 });
    expect(await exists(lock)).toBe(false);
  });
});

describe('Ctrl-C while the target is read', () => {
  it('stops the walk at the next directory (Aborted), no provider built, the lock held during it released', async () => {
    const { ws, keys, a, b, data, lock } = await setup(4);
    const controller = new AbortController();
    let lockedWhileWalking: boolean | undefined;
    let built = 0;
    const { result, calls } = await counting(data, async () => {
      watched.onReaddir = () => {
        lockedWhileWalking ??= existsSync(lock);
        controller.abort();
      };
      return runMigration(
        { from: a, to: b, target: 'data', cwd: ws.dir, signal: controller.signal },
        async () => {
          built++;
          return keys;
        },
      ).catch((e: unknown) => e);
    });
    expect(result).toMatchObject({ code: 'Aborted' });
    // Before: the lock was taken after the walk, and the walk went on into data/even and data/odd.
    expect(lockedWhileWalking).toBe(true);
    expect(calls.filter((c) => c.fn === 'readdir').map((c) => c.path)).toEqual([data]);
    expect(built).toBe(0);
    expect(await exists(lock)).toBe(false);
    // Nothing was touched: the next run migrates every file.
    const again = await migrateFiles({ keys, from: a, to: b, target: 'data', cwd: ws.dir });
    expect(again).toMatchObject({ migrated: 4, failed: 0 });
  });

  it('a run that cannot stop (its target a FIFO nobody writes) is ended by the watchdog without leaving its lock', async () => {
    const { ws, a, b, lock } = await setup(0);
    execFileSync('mkfifo', [join(ws.dir, 'list.fifo')]);
    const child = spawn(
      process.execPath,
      ['--import', HOOKS, BIN, 'migrate', '--from', a, '--to', b, 'list.fifo'],
      {
        cwd: ws.dir,
        env: { PATH: process.env.PATH, KEYPORT_CLI_FROM_SOURCE: '1', KEYPORT_LOCAL_PASSPHRASE: PASSPHRASE },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    const err: Buffer[] = [];
    child.stderr?.on('data', (c: Buffer) => err.push(c));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    try {
      // The lock is taken before the target is opened; the open then waits for a writer forever.
      const deadline = Date.now() + 20_000;
      while (!existsSync(lock)) {
        if (Date.now() > deadline) throw new Error(`the lock was never taken: ${Buffer.concat(err)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      child.kill('SIGINT');
      const r = await exited;
      const stderr = Buffer.concat(err).toString('utf8');
      expect(r.signal, stderr).toBe('SIGINT');
      expect(stderr).toMatch(/still busy 900 ms after SIGINT/);
      // Before: the hard exit removed live temp files only, and the lock stayed on disk.
      expect(existsSync(lock)).toBe(false);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 40_000);
});

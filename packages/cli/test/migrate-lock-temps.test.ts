/**
 * The journal lock's temp files (lock.ts): a taker whose temp is removed under it (another run
 * judged it a leftover) tries again with a new one and still gets the lock; leftovers are
 * removed by age whoever wrote them, and by their writer's pid on this host; pid checks never
 * treat a pid that names no process (0, negative, fractional, beyond pid_t) as alive.
 */
import { createHash } from 'node:crypto';
import { link, mkdtemp, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const calls: string[] = [];
let sabotage = 0;

vi.mock('@keyport/core', async (importOriginal) => {
  const real = await importOriginal<typeof import('@keyport/core')>();
  return {
    ...real,
    createFileExclusive: async (path: string, content: string, temp: string) => {
      calls.push(temp);
      if (sabotage > 0) {
        sabotage--;
        // What another run's cleanup does between this taker's write and its link(2): the temp
        // is gone, and link fails with ENOENT.
        await writeFile(temp, content);
        await unlink(temp);
        await link(temp, path);
      }
      return real.createFileExclusive(path, content, temp);
    },
  };
});

const { acquireJournalLock, holderAlive, isValidPid, removeLeftoverLockTemps } = await import(
  '../src/migrate/lock.js'
);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyport-lock-temps-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('lock temps', () => {
  it('a taker whose temp is removed under it takes a new one and gets the lock; nothing is left', async () => {
    const journal = join(dir, 'j1');
    calls.length = 0;
    sabotage = 2;
    const held = await acquireJournalLock(journal);
    expect(calls).toHaveLength(3);
    expect(new Set(calls).size).toBe(3);
    const tag = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
    for (const temp of calls)
      expect(temp).toMatch(new RegExp(`j1\\.lock\\.${tag}-${process.pid}-[0-9a-f]{12}\\.tmp$`));
    expect(await readdir(dir)).toEqual(['j1.lock']);
    await held.release();
    expect(await readdir(dir)).toEqual([]);
  });

  it('a directory that is not there fails after a few tries, as the file error it is', async () => {
    const e = await acquireJournalLock(join(dir, 'missing', 'j')).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'FileNotFound', exitCode: 8 });
  });

  it('leftovers older than a minute go whoever wrote them; younger ones of live or foreign writers stay', async () => {
    const lock = join(dir, 'j2.lock');
    const names = [
      'j2.lock.0123456789ab.tmp',
      'j2.lock.break.0123456789ab.tmp',
      `j2.lock.ffffffff-${process.pid}-0123456789ab.tmp`,
    ];
    for (const n of names) await writeFile(join(dir, n), '');
    expect(await removeLeftoverLockTemps(lock)).toEqual([]);
    const removed = await removeLeftoverLockTemps(lock, Date.now() + 61_000);
    expect(removed.sort()).toEqual(names.map((n) => join(dir, n)).sort());
    expect(await readdir(dir)).toEqual([]);
  });

  it('a pid that names no process is never alive', () => {
    for (const pid of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, 1e300]) {
      expect(isValidPid(pid), String(pid)).toBe(false);
      expect(holderAlive({ pid }), String(pid)).toBe(false);
    }
    expect(isValidPid(process.pid)).toBe(true);
    expect(holderAlive({ pid: process.pid })).toBe(true);
  });
});

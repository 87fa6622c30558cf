/**
 * A write another writer made at the same size, in the same timestamp tick, is never lost by
 * this writer's next change, and is never undone (a revoked grant or a destroyed version
 * written back).
 *
 * Each write of the keystore is a rename of a fresh file, and file systems reuse inode
 * numbers at once (ext4 hands the freed one to the very next file): after two writes by
 * someone else, the keystore has the inode number of the copy this process parsed. Where
 * timestamps are coarse (1 s on ext4 with 128-byte inodes, ext3 and HFS+; a 1-10 ms jiffy on
 * Linux before multigrain timestamps), those writes also keep its mtime and ctime, so device,
 * inode, size, mtime and ctime all match. The write path used to trust that stamp under the
 * lock: on a loop-mounted `mkfs.ext4 -I 128` file system, the scenario of the first test lost
 * the other writer's key and revived its revoked grant 20 times out of 20.
 *
 * That file system is emulated here, deterministically on any machine: stat (by path and on
 * an open handle) reports one inode number and a ctime equal to the mtime (user space cannot
 * set a ctime), and the test puts the mtime back with utimes, as the coarse clock would have.
 * Only the bytes of the file then tell the two states apart.
 */
import type { BigIntStats, Stats } from 'node:fs';
import { statSync, utimesSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { stampOf } from '../src/atomic-write.js';
import type { LocalProvider } from '../src/index.js';
import { bytes, collect, expectCode, newKeystore, o, open } from './helpers.js';

const emulated = vi.hoisted(() => {
  /** What a coarse file system reports: the inode number reused, ctime in mtime's tick. */
  function coarse<T>(st: T): T {
    if (typeof st !== 'object' || st === null || !('ino' in st)) return st;
    if (typeof st.ino === 'bigint') {
      const s = st as unknown as BigIntStats;
      s.ino = 1n;
      s.ctimeNs = s.mtimeNs;
      s.ctimeMs = s.mtimeMs;
      s.ctime = s.mtime;
    } else {
      const s = st as unknown as Stats;
      s.ino = 1;
      s.ctimeMs = s.mtimeMs;
      s.ctime = s.mtime;
    }
    return st;
  }
  return { coarse };
});

vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  const statSync = ((...args: Parameters<typeof actual.statSync>) =>
    emulated.coarse(actual.statSync(...args))) as typeof actual.statSync;
  return { ...actual, default: { ...actual, statSync }, statSync };
});

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  const open = async (...args: Parameters<typeof actual.open>) => {
    const handle = await actual.open(...args);
    const stat = handle.stat.bind(handle);
    handle.stat = (async (options?: { bigint?: boolean }) =>
      emulated.coarse(await stat(options))) as typeof handle.stat;
    return handle;
  };
  return { ...actual, default: { ...actual, open }, open };
});

const sizeOf = (path: string): number => statSync(path).size;
const stamp = (path: string): string => stampOf(statSync(path, { bigint: true }));
const names = async (kp: LocalProvider): Promise<string[]> =>
  (await collect(kp.listKeys(o))).map((k) => k.uri.split('#')[1] ?? '').sort();

/**
 * Writer `a` and writer `b` (two provider instances: two caches, as two processes) on one
 * keystore holding key `k` (two versions when `rotated`) and a large grant on it, both having
 * parsed that state at one whole-second mtime. `b` then drops the grant, makes `change`, and
 * adds key `name` padded to bring the file back to the size `a` parsed, in the same tick.
 */
async function sameSizeSameTick(
  options: { rotated: boolean; name: string },
  change: (b: LocalProvider, k: { uri: string }) => Promise<void>,
) {
  const { kp: a, path } = await newKeystore();
  const k = { uri: (await a.createKey({ name: 'k', spec: 'AES_256' }, o)).uri };
  if (options.rotated) await a.rotateKey(k, o);
  // What an AES key named like `name` costs in the file, besides its description's characters.
  const before = sizeOf(path);
  await a.createKey({ name: 'c'.repeat(options.name.length), spec: 'AES_256', description: 'x' }, o);
  const keyBytes = sizeOf(path) - before - 1;
  const ballast = await a.createGrant(
    k,
    { grantee: 'alice', operations: ['encrypt'], constraints: { contextEquals: { pad: 'x'.repeat(1500) } } },
    o,
  );
  const b = await open({ path });

  const tick = new Date(Math.floor(Date.now() / 1000) * 1000);
  utimesSync(path, tick, tick);
  await a.describeKey(k, o); // both parse this state (the stamp moved, so both read the file)
  await b.describeKey(k, o);
  const parsed = { size: sizeOf(path), stamp: stamp(path) };

  await b.revokeGrant(k, ballast.id, o);
  await change(b, k);
  const padding = parsed.size - sizeOf(path) - keyBytes;
  expect(padding).toBeGreaterThan(0);
  await b.createKey({ name: options.name, spec: 'AES_256', description: 'd'.repeat(padding) }, o);
  utimesSync(path, tick, tick);
  // The precondition: only the content differs from what `a` parsed.
  expect(sizeOf(path)).toBe(parsed.size);
  expect(stamp(path)).toBe(parsed.stamp);
  return { a, b, k, path, ballast };
}

describe('writes of the same size in one timestamp tick', () => {
  it("another writer's new key and grant revocation survive this writer's next change", async () => {
    const { a, b, k, path } = await sameSizeSameTick({ rotated: false, name: 'new' }, async () => {});
    await a.rotateKey(k, o); // read-modify-write under the lock

    const fresh = await open({ path });
    for (const reader of [fresh, a, b]) {
      expect(await names(reader)).toEqual(['ccc', 'k', 'new']);
      const info = await reader.describeKey(k, o);
      expect(info.versions?.map((v) => [v.version, v.state])).toEqual([
        ['1', 'enabled'],
        ['2', 'enabled'],
      ]);
      expect(await collect(reader.listGrants(k, o))).toEqual([]);
    }
  });

  it('a version another writer destroyed stays destroyed: its material is not written back', async () => {
    let old: Uint8Array = new Uint8Array();
    const { a, b, k, path } = await sameSizeSameTick({ rotated: true, name: 'pad' }, async (writer, key) => {
      old = (await writer.encrypt({ ...key, version: '1' }, bytes('under v1'), {}, o)).ciphertext;
      await writer.destroyKeyVersion({ ...key, version: '1' }, o);
    });
    await a.createKey({ name: 'mine', spec: 'AES_256' }, o); // read-modify-write under the lock

    const fresh = await open({ path });
    for (const reader of [fresh, a, b]) {
      const info = await reader.describeKey(k, o);
      expect(info.versions?.map((v) => [v.version, v.state])).toEqual([
        ['1', 'destroyed'],
        ['2', 'enabled'],
      ]);
      await expectCode(reader.decrypt(k, old, {}, o), 'KeyStateConflict');
      expect(await names(reader)).toEqual(['ccc', 'k', 'mine', 'pad']);
      expect(await collect(reader.listGrants(k, o))).toEqual([]);
    }
  });

  it("a lock-free read sees another writer's same-size change in the same tick (the stamp is racy)", async () => {
    let old: Uint8Array = new Uint8Array();
    const { a, k } = await sameSizeSameTick({ rotated: true, name: 'pad' }, async (writer, key) => {
      old = (await writer.encrypt({ ...key, version: '1' }, bytes('under v1'), {}, o)).ciphertext;
      await writer.destroyKeyVersion({ ...key, version: '1' }, o);
    });
    // No write by `a`: its reads alone must not serve the body it parsed before `b`'s change.
    await expectCode(a.decrypt(k, old, {}, o), 'KeyStateConflict');
    expect(await names(a)).toEqual(['ccc', 'k', 'pad']);
    expect(await collect(a.listGrants(k, o))).toEqual([]);
  });
});

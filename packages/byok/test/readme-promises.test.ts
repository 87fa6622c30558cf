/**
 * README promises that no other test pinned: the target must be AES_256 material, the locks
 * (one import per target, the manifest's own) and when each is taken as abandoned, `checkManifest`,
 * and a pairing recorded although the caller's signal fired during the import. Against SoftHSM2
 * and a local keystore, as a user runs them.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, symlink, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Keyport } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { checkManifest, importHsmKey, MANIFEST_FORMAT, readManifest, recordPairing } from '../src/index.js';
import { countingWraps, openLocal, samplePairing, tempDir, uniqueName, useHsmKeyport } from './support.js';

/** A lock file as another holder writes it (pid, host, nonce), made `ageMs` ago. */
async function foreignLock(path: string, owner: { pid: number; host: string }, ageMs: number): Promise<void> {
  await writeFile(path, JSON.stringify({ ...owner, nonce: 'f'.repeat(24) }));
  const when = new Date(Date.now() - ageMs);
  await utimes(path, when, when);
}

/** The pid of a process that has exited: a lock naming it was left by a dead process. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid as number;
}

const ELSEWHERE = { pid: 1, host: `not-${hostname()}.example` };

describe('importHsmKey: README promises', () => {
  const t = useHsmKeyport(async (dir) => [await openLocal(dir)], { retry: { maxAttempts: 1 } });

  const pendingLocal = async (spec: 'AES_256' | 'HMAC_256' = 'AES_256') =>
    (await t.keyport.createKey('local', { name: uniqueName('t'), spec, external: true })).uri;
  const exportable = async () =>
    (
      await t.keyport.createKey('pkcs11', {
        name: uniqueName('hsm'),
        spec: 'AES_256',
        exportable: true,
      } as never)
    ).uri;
  const state = async (uri: string) => (await t.keyport.describeKey(uri)).state;

  it('a target key that is not AES_256 is InvalidArgument before anything, though it awaits material', async () => {
    // An HMAC_256 key takes 32 bytes of material: without the check it would take the AES key's.
    const uri = await pendingLocal('HMAC_256');
    const manifestPath = join(t.dir, 'hmac.json');
    const { exporter, wraps } = countingWraps(t.hsm);
    await expect(
      importHsmKey({
        keyport: t.keyport,
        hsm: exporter,
        hsmKey: { uri: await exportable() },
        target: { uri },
        manifestPath,
      }),
    ).rejects.toMatchObject({
      code: 'InvalidArgument',
      keyUri: uri,
      message: expect.stringContaining('HMAC_256'),
    });
    expect(wraps()).toBe(0);
    expect(await state(uri)).toBe('pending_import');
    await expect(readFile(manifestPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('another import into the same target holding its lock: waited for 10 s, then Unavailable before anything; abandoned only after 15 minutes from another host, at once when its process died here', async () => {
    const manifestPath = join(t.dir, 'target-lock.json');
    await recordPairing(manifestPath, samplePairing(1));
    const before = await readFile(manifestPath, 'utf8');
    const lockOf = (uri: string) =>
      `${manifestPath}.${createHash('sha256').update(uri).digest('hex').slice(0, 16)}.lock`;
    const hsmKey = { uri: await exportable() };

    // Held from another host for a minute: older than the manifest lock's 30 s, still held.
    const held = await pendingLocal();
    await foreignLock(lockOf(held), ELSEWHERE, 60_000);
    const { exporter, wraps } = countingWraps(t.hsm);
    const started = Date.now();
    await expect(
      importHsmKey({ keyport: t.keyport, hsm: exporter, hsmKey, target: { uri: held }, manifestPath }),
    ).rejects.toMatchObject({ code: 'Unavailable' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(9_500);
    expect(wraps()).toBe(0);
    expect(await state(held)).toBe('pending_import');
    expect(await readFile(manifestPath, 'utf8')).toBe(before);

    // The same lock 16 minutes old: abandoned, and the import goes through.
    await foreignLock(lockOf(held), ELSEWHERE, 16 * 60_000);
    const a = await importHsmKey({
      keyport: t.keyport,
      hsm: t.hsm,
      hsmKey,
      target: { uri: held },
      manifestPath,
    });
    expect(await state(held)).toBe('enabled');

    // A fresh lock whose process on this host died: taken over at once.
    const dead = await pendingLocal();
    await foreignLock(lockOf(dead), { pid: await deadPid(), host: hostname() }, 0);
    const t0 = Date.now();
    const b = await importHsmKey({
      keyport: t.keyport,
      hsm: t.hsm,
      hsmKey,
      target: { uri: dead },
      manifestPath,
    });
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect((await readManifest(manifestPath)).pairings).toEqual([samplePairing(1), a, b]);
  }, 60_000);

  it('a signal that fires once the target took the material does not stop the pairing being recorded', async () => {
    const uri = await pendingLocal();
    const manifestPath = join(t.dir, 'signal.json');
    const controller = new AbortController();
    // The caller's Ctrl-C lands right after importKeyMaterial answered.
    const keyport = new Proxy(t.keyport, {
      get(target, property) {
        const value: unknown = Reflect.get(target, property, target);
        if (typeof value !== 'function') return value;
        if (property !== 'importKeyMaterial') return value.bind(target);
        return async (...args: unknown[]) => {
          const answer: unknown = await value.apply(target, args);
          controller.abort();
          return answer;
        };
      },
    }) as Keyport;
    const pairing = await importHsmKey({
      keyport,
      hsm: t.hsm,
      hsmKey: { uri: await exportable() },
      target: { uri },
      manifestPath,
      signal: controller.signal,
    });
    expect(controller.signal.aborted).toBe(true);
    expect(await state(uri)).toBe('enabled');
    expect(await readManifest(manifestPath)).toEqual({ format: MANIFEST_FORMAT, pairings: [pairing] });
  });
});

describe("the manifest's lock", () => {
  it('one whose process died, or older than 30 s, is broken by the next writer; one held by a live writer for more than 10 s is Unavailable, the manifest as it was', async () => {
    const path = join(await tempDir(), 'm.json');
    const lock = `${path}.lock`;
    await foreignLock(lock, { pid: await deadPid(), host: hostname() }, 0);
    await recordPairing(path, samplePairing(1));
    await foreignLock(lock, ELSEWHERE, 31_000);
    await recordPairing(path, samplePairing(2));
    const before = await readFile(path, 'utf8');

    await foreignLock(lock, ELSEWHERE, 0);
    const started = Date.now();
    await expect(recordPairing(path, samplePairing(3))).rejects.toMatchObject({ code: 'Unavailable' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(9_500);
    expect(await readFile(path, 'utf8')).toBe(before);
    expect((await readManifest(path)).pairings).toEqual([samplePairing(1), samplePairing(2)]);
  }, 30_000);
});

describe('checkManifest', () => {
  it('refuses what importHsmKey refuses before anything, and returns the manifest it read', async () => {
    const dir = await tempDir();
    const path = join(dir, 'm.json');
    expect(await checkManifest(path)).toEqual({ format: MANIFEST_FORMAT, pairings: [] });
    await recordPairing(path, samplePairing(1));
    expect(await checkManifest(path)).toEqual({ format: MANIFEST_FORMAT, pairings: [samplePairing(1)] });

    const damaged = join(dir, 'damaged.json');
    await writeFile(damaged, '{"format":"keyport-byok-manifest/1","pairings":[null]}');
    await expect(checkManifest(damaged)).rejects.toMatchObject({ code: 'Integrity' });
    const link = join(dir, 'link.json');
    await symlink(path, link);
    await expect(checkManifest(link)).rejects.toMatchObject({ code: 'InvalidArgument' });
    await expect(checkManifest(join(dir, 'missing', 'm.json'))).rejects.toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringContaining('directory'),
    });
    await mkdir(join(dir, 'a-directory'));
    await expect(checkManifest(join(dir, 'a-directory'))).rejects.toMatchObject({ code: 'InvalidArgument' });
    await expect(checkManifest('' as string)).rejects.toMatchObject({ code: 'InvalidArgument' });
  });
});

/**
 * File system failures a keystore meets: a directory made where the lock goes, a missing
 * directory, a full disk. Each fails typed, says why, leaves the keystore as it was and never
 * keeps the writer busy past its `lockTimeoutMs`.
 */
import { execFile } from 'node:child_process';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { isKeyportError, type KeyportError } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { bytes, collect, newKeystore, o, open, tempDir, tempKeystorePath, text } from './helpers.js';

const run = promisify(execFile);

async function failure(promise: Promise<unknown>): Promise<KeyportError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isKeyportError(error)) throw new Error(`expected a KeyportError, got ${String(error)}`);
  return error;
}

describe('a lock path that cannot be a lock', () => {
  it('a directory where the lock goes: the write gives up at lockTimeoutMs, naming it, without spinning', async () => {
    const { kp, path } = await newKeystore({ lockTimeoutMs: 300 });
    await mkdir(`${path}.lock`);
    // Old enough to count as an unreadable stale lock, so it is "broken" (it cannot be deleted).
    const old = new Date(Date.now() - 60_000);
    await utimes(`${path}.lock`, old, old);
    const started = Date.now();
    const cpuBefore = process.cpuUsage();
    // Before: every break "succeeded" and the writer retried at once, at full CPU, until the
    // caller's own signal (here 8 s) fired; lockTimeoutMs was never looked at.
    const error = await failure(
      kp.createKey({ name: 'k', spec: 'AES_256' }, { signal: AbortSignal.timeout(8_000) }),
    );
    const elapsed = Date.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    expect(error.code).toBe('Timeout');
    expect(error.message).toMatch(/keys\.keystore\.lock" is a directory, not a lock file \(remove it\)/);
    expect(elapsed).toBeLessThan(3_000);
    // Polling with backoff, not a busy loop.
    expect((cpu.user + cpu.system) / 1000).toBeLessThan(elapsed * 0.8);
  });
});

describe('the true reason a write fails', () => {
  it('a missing directory is said to be missing', async () => {
    const path = join(await tempDir(), 'no-such-dir', 'k.keystore');
    const error = await failure(open({ path, create: true }));
    expect(error.code).toBe('Unavailable');
    // Before: "cannot create the keystore lock file (does the directory exist?)", for any cause.
    expect(error.message).toMatch(/cannot create the keystore lock file ".*k\.keystore\.lock": /);
    expect(error.message).toMatch(/the directory does not exist \(ENOENT\)$/);
  });

  it('a path through a regular file says so', async () => {
    const file = await tempKeystorePath();
    await writeFile(file, 'not a directory');
    const error = await failure(open({ path: join(file, 'k.keystore'), create: true }));
    expect(error.code).toBe('Unavailable');
    expect(error.message).toBe(
      'keystore file cannot be read: a part of the path is not a directory (ENOTDIR)',
    );
  });

  it('a full disk: writes fail saying so, every acknowledged change stays, the keystore still opens', async (ctx) => {
    const mountPoint = await tempDir();
    // Needs root (or CAP_SYS_ADMIN) to mount a small tmpfs; elsewhere there is no full disk to make.
    const mounted = await run('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mountPoint]).then(
      () => true,
      () => false,
    );
    // Under CI a machine that cannot mount fails here rather than skipping (as cli's tmpfs tests do).
    if (!mounted && process.env.CI !== 'true') ctx.skip();
    expect(mounted, 'mount -t tmpfs (root)').toBe(true);
    try {
      const path = join(mountPoint, 'keys.keystore');
      const { kp } = await newKeystore({ path, lockTimeoutMs: 2_000 });
      const shared = await kp.createKey({ name: 'shared', spec: 'AES_256' }, o);
      const { ciphertext } = await kp.encrypt({ uri: shared.uri }, bytes('before the disk filled'), {}, o);
      const acked = ['shared'];
      let writeError: KeyportError | undefined;
      for (let i = 0; i < 200 && writeError === undefined; i++) {
        try {
          await kp.createKey({ name: `rsa-${i}`, spec: 'RSA_2048' }, o);
          acked.push(`rsa-${i}`);
        } catch (error) {
          if (!isKeyportError(error)) throw error;
          writeError = error;
        }
      }
      expect(writeError?.code).toBe('Unavailable');
      expect(writeError?.message).toBe(
        'keystore file cannot be written: no space left on the device (ENOSPC)',
      );

      const keysIn = async (): Promise<string[]> => {
        const reopened = await open({ path });
        return (await collect(reopened.listKeys(o))).map((k) => k.uri.split('#')[1] ?? '');
      };
      expect((await keysIn()).sort()).toEqual([...acked].sort());

      // Fill what is left, so not even the lock file can be made.
      await fill(mountPoint);
      const lockError = await failure(kp.rotateKey({ uri: shared.uri }, o));
      expect(lockError.code).toBe('Unavailable');
      // Before: "(does the directory exist?)" beside a directory that plainly exists.
      expect(lockError.message).toMatch(/lock file ".*": no space left on the device \(ENOSPC\)$/);

      const reopened = await open({ path });
      expect((await collect(reopened.listKeys(o))).length).toBe(acked.length);
      const { plaintext } = await reopened.decrypt({ uri: shared.uri }, ciphertext, {}, o);
      expect(text(plaintext)).toBe('before the disk filled');
    } finally {
      await run('umount', [mountPoint]);
    }
  }, 60_000);
});

/** Writes files into `dir` until its file system has no room (blocks, then inodes). */
async function fill(dir: string): Promise<void> {
  for (const size of [4096, 0]) {
    for (let i = 0; i < 100_000; i++) {
      try {
        await writeFile(join(dir, `fill-${size}-${i}`), Buffer.alloc(size));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw error;
      }
    }
  }
}

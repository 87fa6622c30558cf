/**
 * The token's key-metadata lock file: the default directory is per user under os.tmpdir(),
 * made 0700, and refused when someone else could have planted it (a symbolic link, not a
 * directory, another owner, writable by others); a writer waits for a held lock and its
 * AbortSignal ends the wait with nothing written.
 */
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pkcs11Provider } from '../src/index.js';
import { defaultLockDirectory, lockFileName } from '../src/token-lock.js';
import { openProvider, signal, softhsm, uniqueName } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'keyport-p11-lock-'));
let provider: Pkcs11Provider;
beforeAll(async () => {
  provider = await openProvider({ keyCacheMs: 0 });
});
afterAll(async () => {
  await provider.close();
  rmSync(dir, { recursive: true, force: true });
});

const create = (p: Pkcs11Provider, name: string, s = signal()) =>
  p.createKey({ name, spec: 'AES_256' }, { signal: s });
const exists = (name: string) =>
  provider.describeKey({ uri: provider.uriFor(name) }, { signal: signal() }).then(
    () => true,
    (e: { code?: string }) => (e.code === 'NotFound' ? false : Promise.reject(e)),
  );

/** Runs `fn` with os.tmpdir() answering a fresh directory (TMPDIR), so the default lock directory is in it. */
async function withTmpdir(fn: (lockDir: string) => Promise<void>): Promise<void> {
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = mkdtempSync(join(dir, 'tmp-'));
  try {
    await fn(defaultLockDirectory());
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
}

describe('the default lock directory', () => {
  it('is made per user under os.tmpdir(), mode 0700', async () => {
    await withTmpdir(async (lockDir) => {
      expect(lockDir.startsWith(process.env.TMPDIR as string)).toBe(true);
      await create(provider, uniqueName('lockdir'));
      const st = statSync(lockDir);
      expect(st.isDirectory()).toBe(true);
      expect(st.mode & 0o777).toBe(0o700);
    });
  });

  const planted: Array<[string, (path: string) => void, string]> = [
    [
      'a symbolic link',
      (path) => symlinkSync(mkdtempSync(join(dir, 'elsewhere-')), path),
      'is a symbolic link',
    ],
    ['a file', (path) => writeFileSync(path, ''), 'is not a directory'],
    [
      'writable by others',
      (path) => {
        mkdirSync(path);
        chmodSync(path, 0o777);
      },
      'is writable by other users',
    ],
  ];
  if (process.getuid?.() === 0) {
    // Only root can make a directory another user owns.
    planted.push([
      'owned by another user',
      (path) => {
        mkdirSync(path, { mode: 0o700 });
        chownSync(path, 54321, 54321);
      },
      'is owned by another user',
    ]);
  }
  for (const [what, plant, message] of planted) {
    it(`is refused when it is ${what}, and nothing is written`, async () => {
      await withTmpdir(async (lockDir) => {
        plant(lockDir);
        const name = uniqueName('planted');
        await expect(create(provider, name)).rejects.toMatchObject({
          code: 'Unavailable',
          retryable: false,
          message: expect.stringContaining(message),
        });
        expect(await exists(name)).toBe(false);
      });
    });
  }
});

describe('a held lock', () => {
  function tokenSerial(): string {
    const label = softhsm().KEYPORT_SOFTHSM_TOKEN;
    for (const slot of provider.p11.C_GetSlotList(true)) {
      const info = provider.p11.C_GetTokenInfo(slot);
      if (info.label.trimEnd() === label) return info.serialNumber.trimEnd();
    }
    throw new Error('token not found');
  }

  it('makes a writer wait; its AbortSignal ends the wait with nothing written', async () => {
    const lockDir = mkdtempSync(join(dir, 'given-'));
    const other = await openProvider({ lockDirectory: lockDir });
    try {
      const lockPath = join(
        lockDir,
        lockFileName({
          modulePath: realpathSync(softhsm().KEYPORT_SOFTHSM_MODULE),
          tokenSerial: tokenSerial(),
          tokenLabel: other.tokenLabel,
        }),
      );
      // Held by a live process on this host (this one): never judged abandoned.
      const owner = JSON.stringify({ pid: process.pid, host: hostname(), nonce: 'held-by-test' });
      writeFileSync(lockPath, owner);
      const name = uniqueName('held');
      const controller = new AbortController();
      const waiting = create(other, name, controller.signal);
      setTimeout(() => controller.abort(), 200);
      await expect(waiting).rejects.toMatchObject({ code: 'Aborted' });
      expect(await exists(name)).toBe(false);
      rmSync(lockPath);
      await create(other, name);
      expect(await exists(name)).toBe(true);
    } finally {
      await other.close();
    }
  });

  it('a lockDirectory that is not a directory is refused', async () => {
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, '');
    const other = await openProvider({ lockDirectory: file });
    try {
      await expect(create(other, uniqueName('bad-dir'))).rejects.toMatchObject({
        code: 'Unavailable',
        message: expect.stringContaining('is not a directory'),
      });
    } finally {
      await other.close();
    }
  });
});

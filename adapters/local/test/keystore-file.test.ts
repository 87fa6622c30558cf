import { createHash } from 'node:crypto';
import { chmod, chown, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { localKeystore, openLocalKeystore } from '../src/index.js';
import { EXPOSED_KEYSTORE_WARNING } from '../src/keystore-file.js';
import {
  bytes,
  collect,
  expectCode,
  FAST_KDF,
  newKeystore,
  o,
  open,
  PASSPHRASE,
  tempKeystorePath,
  text,
} from './helpers.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('keystore file', () => {
  it('creates a sealed file that does not contain key names, labels or material in clear', async () => {
    const { kp, path } = await newKeystore();
    await kp.createKey({ name: 'payments', spec: 'AES_256', labels: { team: 'ledger-team' } }, o);
    const raw = await readFile(path);
    expect(raw.subarray(0, 8).toString('ascii')).toBe('KPKSTORE');
    expect(raw.includes(Buffer.from('payments'))).toBe(false);
    expect(raw.includes(Buffer.from('ledger-team'))).toBe(false);
  });

  it('stores the scrypt parameters in the header (default cost when none is given)', async () => {
    const path = await tempKeystorePath();
    const kp = await openLocalKeystore({ path, passphrase: PASSPHRASE, create: true });
    await kp.close();
    const raw = await readFile(path);
    expect([raw[8], raw[9], raw[10], raw[11], raw[12]]).toEqual([1, 1, 15, 8, 1]);
    const cheap = await newKeystore();
    const cheapRaw = await readFile(cheap.path);
    expect(cheapRaw[10]).toBe(FAST_KDF.log2N);
  });

  it('reopens with the same passphrase and finds its keys and their ciphertexts', async () => {
    const { kp, path } = await newKeystore();
    const key = await kp.createKey({ name: 'k1', spec: 'AES_256' }, o);
    const { ciphertext } = await kp.encrypt({ uri: key.uri }, bytes('hello'), { context: { a: '1' } }, o);
    await kp.close();
    const again = await open({ path });
    expect((await collect(again.listKeys(o))).map((k) => k.uri)).toEqual([key.uri]);
    const { plaintext } = await again.decrypt({ uri: key.uri }, ciphertext, { context: { a: '1' } }, o);
    expect(text(plaintext)).toBe('hello');
  });

  it('refuses a wrong passphrase with AccessDenied and leaves the file alone', async () => {
    const { kp, path } = await newKeystore();
    await kp.createKey({ name: 'k1', spec: 'AES_256' }, o);
    const before = sha256(await readFile(path));
    await expectCode(open({ path, passphrase: 'not the passphrase' }), 'AccessDenied');
    await expectCode(open({ path, passphrase: 'not the passphrase', create: true }), 'AccessDenied');
    expect(sha256(await readFile(path))).toBe(before);
  });

  it('a wrong passphrase error carries neither passphrase, nor does any cause or field', async () => {
    const { path } = await newKeystore();
    const wrong = 'hunter2 wrong passphrase';
    for (const attempt of [
      () => open({ path, passphrase: wrong }),
      () => localKeystore({ path, passphrase: wrong }).createKey({ name: 'k', spec: 'AES_256' }, o),
    ]) {
      const error = await attempt().catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'AccessDenied' });
      const shown = `${inspect(error, { depth: 10 })} ${JSON.stringify(error)} ${String(error)}`;
      expect(shown).not.toContain(wrong);
      expect(shown).not.toContain(PASSPHRASE);
    }
  });

  it('the passphrase is copied: the caller may wipe its bytes after passing them', async () => {
    const { path } = await newKeystore();
    const secret = Buffer.from(PASSPHRASE);
    const lazy = localKeystore({ path, passphrase: secret, kdf: FAST_KDF });
    const eager = await open({ path, passphrase: secret });
    secret.fill(0);
    await lazy.createKey({ name: 'lazy', spec: 'AES_256' }, o);
    await eager.createKey({ name: 'eager', spec: 'AES_256' }, o);
    await lazy.close();
  });

  it('a missing file is NotFound unless create is set', async () => {
    const path = await tempKeystorePath();
    await expectCode(open({ path }), 'NotFound');
    const kp = await open({ path, create: true });
    expect(kp.principal).toBe('owner');
  });

  for (const [what, damage] of [
    ['truncated', (b: Buffer) => b.subarray(0, b.length - 40)],
    ['truncated to its header', (b: Buffer) => b.subarray(0, 50)],
    ['empty', () => Buffer.alloc(0)],
    ['with a flipped body byte', (b: Buffer) => flip(b, 90)],
    ['with a flipped salt byte', (b: Buffer) => flip(b, 14)],
    ['with a flipped digest byte', (b: Buffer) => flip(b, b.length - 1)],
    ['not a keystore at all', () => Buffer.from('{"keys": []}')],
  ] as const) {
    it(`a file ${what} is an Integrity error and is never overwritten`, async () => {
      const { kp, path } = await newKeystore();
      await kp.createKey({ name: 'k1', spec: 'AES_256' }, o);
      await kp.close();
      const damaged = damage(await readFile(path));
      await writeFile(path, damaged);
      await expectCode(open({ path }), 'Integrity');
      await expectCode(open({ path, create: true }), 'Integrity');
      expect(sha256(await readFile(path))).toBe(sha256(damaged));
    });
  }

  it('a provider already open reports Integrity for a file damaged under it, and writes nothing', async () => {
    const { kp, path } = await newKeystore();
    const key = await kp.createKey({ name: 'k1', spec: 'AES_256' }, o);
    const damaged = flip(await readFile(path), 100);
    await writeFile(path, damaged);
    await expectCode(kp.encrypt({ uri: key.uri }, bytes('x'), {}, o), 'Integrity');
    await expectCode(kp.createKey({ name: 'k2', spec: 'AES_256' }, o), 'Integrity');
    await expectCode(kp.disableKey({ uri: key.uri }, o), 'Integrity');
    expect(sha256(await readFile(path))).toBe(sha256(damaged));
  });

  it('detects a body re-sealed without the passphrase (digest recomputed) as Integrity', async () => {
    const { kp, path } = await newKeystore();
    await kp.createKey({ name: 'k1', spec: 'AES_256' }, o);
    await kp.close();
    const raw = flip(await readFile(path), 80);
    const body = raw.subarray(0, raw.length - 32);
    const forged = Buffer.concat([body, createHash('sha256').update(body).digest()]);
    await writeFile(path, forged);
    await expectCode(open({ path }), 'Integrity');
  });

  it('leaves no temp or lock files behind after writes', async () => {
    const { kp, path } = await newKeystore();
    for (let i = 0; i < 3; i++) await kp.createKey({ name: `k${i}`, spec: 'AES_256' }, o);
    expect(await readdir(dirname(path))).toEqual(['keys.keystore']);
  });

  it('rejects an empty passphrase and out-of-range scrypt parameters', async () => {
    const path = await tempKeystorePath();
    await expectCode(openLocalKeystore({ path, passphrase: '', create: true }), 'InvalidArgument');
    await expectCode(
      openLocalKeystore({ path, passphrase: PASSPHRASE, create: true, kdf: { log2N: 4 } }),
      'InvalidArgument',
    );
  });

  it('a keystore in a missing directory is Unavailable', async () => {
    const path = join(dirname(await tempKeystorePath()), 'no-such-dir', 'k.keystore');
    await expectCode(open({ path, create: true }), 'Unavailable');
  });

  it('a file name too long for its lock and temp names is InvalidArgument at once, not a failed write', async () => {
    const dir = dirname(await tempKeystorePath());
    // 210 bytes is the longest: `<name>.lock.break.<host>.<pid>.<random>.tmp` then just fits 255.
    const longest = await open({ path: join(dir, 'k'.repeat(210)), create: true });
    await longest.createKey({ name: 'k', spec: 'AES_256' }, o);
    await longest.rotateKey({ uri: longest.keyUri('k') }, o);
    // One byte more (here a two-byte character) is refused before anything is touched; 230 bytes
    // used to create nothing and fail with Unavailable ("does the directory exist?").
    for (const name of [`${'k'.repeat(209)}é`, 'k'.repeat(230)]) {
      await expectCode(open({ path: join(dir, name), create: true }), 'InvalidArgument');
      expect(() => localKeystore({ path: join(dir, name), passphrase: PASSPHRASE })).toThrow(/options\.path/);
    }
    // A short symbolic link to a long name: the writes go beside the target, so it is refused too.
    await symlink(join(dir, 'k'.repeat(230)), join(dir, 'link.keystore'));
    await expectCode(open({ path: join(dir, 'link.keystore'), create: true }), 'InvalidArgument');
    expect((await readdir(dir)).sort()).toEqual(['k'.repeat(210), 'link.keystore']);
  });

  it('accepts a binary passphrase', async () => {
    const path = await tempKeystorePath();
    const secret = new Uint8Array([0, 1, 2, 255]);
    await open({ path, passphrase: secret, create: true });
    await open({ path, passphrase: new Uint8Array([0, 1, 2, 255]) });
    await expectCode(open({ path, passphrase: new Uint8Array([0, 1, 2, 254]) }), 'AccessDenied');
  });

  it('a closed provider refuses further calls', async () => {
    const { kp } = await newKeystore();
    await kp.close();
    await expectCode(kp.createKey({ name: 'k', spec: 'AES_256' }, o), 'InvalidArgument');
  });

  it('honours an aborted signal before any work', async () => {
    const path = await tempKeystorePath();
    const signal = AbortSignal.abort();
    await expectCode(openLocalKeystore({ path, passphrase: PASSPHRASE, create: true, signal }), 'Aborted');
    const { kp } = await newKeystore();
    await expectCode(kp.createKey({ name: 'k', spec: 'AES_256' }, { signal }), 'Aborted');
    const key = await kp.createKey({ name: 'k', spec: 'AES_256' }, o);
    await expectCode(kp.encrypt({ uri: key.uri }, bytes('x'), {}, { signal }), 'Aborted');
  });
});

function flip(b: Buffer, at: number): Buffer {
  const copy = Buffer.from(b);
  copy[at] = (copy[at] as number) ^ 0x01;
  return copy;
}

describe.runIf(process.platform !== 'win32')('a keystore file other users can reach', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  /** Captures the exposure warnings emitted from now on. */
  const warnings = () => {
    const spy = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    return () =>
      spy.mock.calls
        .filter(
          ([, options]) => (options as { code?: string } | undefined)?.code === EXPOSED_KEYSTORE_WARNING,
        )
        .map(([message]) => String(message));
  };

  it('a world-readable keystore is opened with a warning naming its mode, once per provider', async () => {
    // Before: opened silently; only a later write happened to make it 0600 again.
    const { kp, path } = await newKeystore();
    await kp.createKey({ name: 'k', spec: 'AES_256' }, o);
    await chmod(path, 0o644);
    const seen = warnings();
    const reader = await open({ path });
    await reader.encrypt({ uri: reader.keyUri('k') }, new Uint8Array(1), { context: {} }, o);
    await reader.describeKey({ uri: reader.keyUri('k') }, o);
    expect(seen()).toHaveLength(1);
    expect(seen()[0]).toContain('mode is 0644');
    expect(seen()[0]).toContain(path);
    await reader.createKey({ name: 'j', spec: 'AES_256' }, o);
    expect((await stat(path)).mode & 0o777).toBe(0o600); // every write leaves it 0600
    expect(seen()).toHaveLength(1);
  });

  it.runIf(process.getuid?.() === 0)(
    'a keystore owned by another user is opened with a warning',
    async () => {
      // Only root can give a file away.
      const { path } = await newKeystore();
      await chown(path, 4242, 4242);
      const seen = warnings();
      await open({ path });
      expect(seen()).toEqual([expect.stringContaining('owned by another user (uid 4242)')]);
    },
  );

  it('a 0600 keystore of our own opens without a warning', async () => {
    const { path } = await newKeystore();
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const seen = warnings();
    await open({ path });
    expect(seen()).toEqual([]);
  });
});

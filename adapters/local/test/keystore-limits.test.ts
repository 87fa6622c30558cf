/**
 * Keystore limits: the path is a regular file or absent (never a hang), key derivation is
 * bounded and abortable, key material is parsed for its declared type at open, leftovers of
 * killed processes are removed on open, and nothing is written once a deadline has passed.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import {
  chmod,
  lchown,
  lstat,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Keyport, type KeySpec } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { tempName } from '../src/atomic-write.js';
import { openLocalKeystore } from '../src/index.js';
import { deriveKeys, readHeader, seal, unseal } from '../src/sealed-file.js';
import {
  collect,
  expectCode,
  FAST_KDF,
  FakeClock,
  newKeystore,
  o,
  open,
  PASSPHRASE,
  tempDir,
} from './helpers.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function settlesWithin<T>(ms: number, promise: Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await promise;
  } finally {
    expect(performance.now() - started, 'took too long').toBeLessThan(ms);
  }
}

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  const pid = child.pid as number;
  await new Promise((resolve) => child.on('exit', resolve));
  return pid;
}

/** Rewrites the scrypt bytes of a keystore header and recomputes its (unkeyed) digest. */
async function withKdfBytes(path: string, log2N: number, r: number, p: number): Promise<void> {
  const file = Buffer.from(await readFile(path));
  file[10] = log2N;
  file[11] = r;
  file[12] = p;
  const body = file.subarray(0, file.length - 32);
  await writeFile(path, Buffer.concat([body, createHash('sha256').update(body).digest()]));
}

type Body = { keys: Array<Record<string, unknown> & { versions: Array<Record<string, unknown>> }> };

/** Re-seals the keystore body after `edit`, under the right passphrase. */
async function editBody(path: string, edit: (body: Body) => void): Promise<void> {
  const file = await readFile(path);
  const header = readHeader(file);
  const keys = await deriveKeys(Buffer.from(PASSPHRASE), header.params, header.salt);
  const body = JSON.parse(unseal(file, keys).toString('utf8')) as Body;
  edit(body);
  await writeFile(path, seal(Buffer.from(JSON.stringify(body)), keys));
}

describe('the keystore path', () => {
  it('a FIFO is InvalidArgument at once, for open, create and a provider whose file was swapped', async () => {
    const dir = await tempDir();
    const fifo = join(dir, 'fifo.keystore');
    execFileSync('mkfifo', [fifo]);
    await settlesWithin(1_000, expectCode(open({ path: fifo }), 'InvalidArgument'));
    await settlesWithin(1_000, expectCode(open({ path: fifo, create: true }), 'InvalidArgument'));
    const { kp, path } = await newKeystore();
    const key = await kp.createKey({ name: 'k', spec: 'AES_256' }, o);
    await rm(path);
    execFileSync('mkfifo', [path]);
    await settlesWithin(1_000, expectCode(kp.describeKey({ uri: key.uri }, o), 'InvalidArgument'));
    await settlesWithin(
      1_000,
      expectCode(kp.createKey({ name: 'k2', spec: 'AES_256' }, o), 'InvalidArgument'),
    );
  });

  it('/dev/zero and a directory are InvalidArgument, naming what the path is', async () => {
    const error = await open({ path: '/dev/zero' }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringContaining('character device'),
    });
    await expectCode(open({ path: await tempDir() }), 'InvalidArgument');
  });

  it.runIf(process.platform === 'linux')(
    'a "regular" file whose size says nothing (/proc/self/pagemap: size 0, 256 GiB) is read no further than its size',
    async () => {
      // Before: readFile read it to the end (it takes its own stat, and reads on when that says
      // 0), for minutes and gigabytes: the same for a keystore or lock file grown after its check.
      const dir = await tempDir();
      const path = join(dir, 'proc.keystore');
      await symlink('/proc/self/pagemap', path);
      await settlesWithin(3_000, expectCode(open({ path }), 'Integrity'));
      const { path: real } = await newKeystore({ path: join(dir, 'real.keystore') });
      await symlink('/proc/self/pagemap', `${real}.lock`);
      const kp = await open({ path: real, lockTimeoutMs: 1_000 });
      await settlesWithin(
        3_000,
        kp.createKey({ name: 'k', spec: 'AES_256' }, o).catch(() => undefined),
      );
    },
    10_000,
  );

  it('a symbolic link to the keystore: writes land in the file it points to, and the link stays', async () => {
    const dir = await tempDir();
    const { kp: direct, path: target } = await newKeystore({ path: join(dir, 'real.keystore') });
    await direct.createKey({ name: 'a', spec: 'AES_256' }, o);
    const link = join(dir, 'link.keystore');
    await symlink('real.keystore', link); // relative, as a careless user would make it
    const viaLink = await open({ path: link });
    await viaLink.createKey({ name: 'b', spec: 'AES_256' }, o);
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    // The provider of the target sees the key added through the link, and the other way round.
    expect((await collect(direct.listKeys(o))).map((k) => k.uri.split('#')[1])).toEqual(['a', 'b']);
    await direct.createKey({ name: 'c', spec: 'AES_256' }, o);
    expect((await collect(viaLink.listKeys(o))).map((k) => k.uri.split('#')[1])).toEqual(['a', 'b', 'c']);
    // One lock for both, beside the file; no lock or temp left beside the link.
    expect((await readdir(dir)).sort()).toEqual(['link.keystore', basename(target)]);
  });

  it('a dangling symbolic link with create: the keystore is created where it points', async () => {
    const dir = await tempDir();
    const link = join(dir, 'link.keystore');
    await symlink(join(dir, 'real.keystore'), link);
    const kp = await open({ path: link, create: true });
    await kp.createKey({ name: 'k', spec: 'AES_256' }, o);
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    const direct = await open({ path: join(dir, 'real.keystore') });
    expect((await direct.describeKey({ uri: direct.keyUri('k') }, o)).state).toBe('enabled');
  });

  // Giving a link to another user takes root (CI runs as root).
  it.runIf(process.geteuid?.() === 0)(
    "another user's link in a sticky, world-writable directory is not followed (fs.protected_symlinks)",
    async () => {
      const shared = await tempDir();
      await chmod(shared, 0o1777); // as /tmp is
      const victim = join(await tempDir(), 'victim.txt');
      await writeFile(victim, 'mine');
      const planted = join(shared, 'app.keystore');
      await symlink(victim, planted);
      // Planted by someone else (root may give a link away; everyone else made their own).
      const stranger = (process.geteuid?.() ?? 0) + 4242;
      await lchown(planted, stranger, stranger);
      // Before: the keystore was written over the file the link names (the victim's file replaced).
      await expectCode(open({ path: planted, create: true }), 'AccessDenied');
      expect(await readFile(victim, 'utf8')).toBe('mine');
      expect((await readdir(dirname(victim))).sort()).toEqual(['victim.txt']);
      // The directory's owner's link, and one outside a sticky directory, are followed as before.
      await lchown(planted, (await stat(shared)).uid, (await stat(shared)).gid);
      await rm(victim);
      const kp = await open({ path: planted, create: true });
      await kp.createKey({ name: 'k', spec: 'AES_256' }, o);
      expect((await lstat(planted)).isSymbolicLink()).toBe(true);
      expect((await lstat(victim)).isFile()).toBe(true);
    },
  );

  it('a file over 64 MiB is Integrity at once, also with create, and is left alone', async () => {
    const path = join(await tempDir(), 'big.keystore');
    await writeFile(path, '');
    await truncate(path, 64 * 1024 * 1024 + 1); // sparse: costs no disk
    await settlesWithin(1_000, expectCode(open({ path }), 'Integrity'));
    await settlesWithin(1_000, expectCode(open({ path, create: true }), 'Integrity'));
    expect((await lstat(path)).size).toBe(64 * 1024 * 1024 + 1);
  });
});

describe('the 64 MiB limit on writes', () => {
  it('a change that would make the file larger than 64 MiB is InvalidArgument; the keystore stays readable', async () => {
    const { kp, path } = await newKeystore();
    const key = await kp.createKey({ name: 'k', spec: 'AES_256' }, o);
    const before = sha256(await readFile(path));
    // One grant whose context constraint is ~68 MB: within core's per-string and per-pair limits.
    const huge: Record<string, string> = {};
    for (let i = 0; i < 520; i++) huge[`k${i}`.padEnd(65_535, 'x')] = 'v'.repeat(65_535);
    await expectCode(
      kp.createGrant(
        { uri: key.uri },
        { grantee: 'bob', operations: ['encrypt'], constraints: { contextEquals: huge } },
        o,
      ),
      'InvalidArgument',
    );
    expect(sha256(await readFile(path))).toBe(before);
    expect(await readdir(dirname(path))).toEqual([basename(path)]);
    // Another process (a fresh provider) still opens it, and the writer goes on writing.
    await open({ path });
    await kp.createKey({ name: 'k2', spec: 'AES_256' }, o);
    expect((await collect((await open({ path })).listKeys(o))).length).toBe(2);
  }, 30_000);
});

describe('the clock option', () => {
  it('a clock that throws is InvalidArgument naming the clock, without its message, and writes nothing', async () => {
    const { kp, path } = await newKeystore();
    await kp.createKey({ name: 'k', spec: 'AES_256' }, o);
    const before = sha256(await readFile(path));
    const clock = () => {
      throw new Error('clock broke: s3cr3t');
    };
    const user = await open({ path, clock }); // an existing file: the clock is first read on use
    for (const attempt of [
      () => user.encrypt({ uri: user.keyUri('k') }, new Uint8Array(1), {}, o),
      () => user.createKey({ name: 'k2', spec: 'AES_256' }, o),
      () =>
        openLocalKeystore({
          path: `${path}.new`,
          passphrase: PASSPHRASE,
          kdf: FAST_KDF,
          create: true,
          clock,
        }),
    ]) {
      const error = await attempt().catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'InvalidArgument', message: expect.stringContaining('clock') });
      expect(String((error as Error).message)).not.toContain('s3cr3t');
    }
    expect(sha256(await readFile(path))).toBe(before);
    expect(await readdir(dirname(path))).toEqual([basename(path)]);
  });
});

describe('key derivation', () => {
  it('scrypt parameters over the bounds are refused before any derivation', async () => {
    const { path } = await newKeystore();
    for (const [log2N, r, p] of [
      [19, 8, 2], // work 2^23 > 2^22
      [19, 8, 1], // memory 128·N·r = 512 MiB > 256 MiB
    ] as const) {
      await withKdfBytes(path, log2N, r, p);
      await settlesWithin(500, expectCode(open({ path }), 'Integrity'));
    }
  });

  it('a costly (in-bounds) derivation honours the deadline and the abort signal', async () => {
    const { path } = await newKeystore();
    await withKdfBytes(path, 18, 8, 2); // 2^22 work: about a second or more
    const timedOut = await settlesWithin(
      600,
      open({ path, timeoutMs: 50 }).catch((e: unknown) => e),
    );
    expect(timedOut).toMatchObject({ code: 'Timeout' });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const aborted = await settlesWithin(
      600,
      open({ path, signal: controller.signal }).catch((e: unknown) => e),
    );
    expect(aborted).toMatchObject({ code: 'Aborted' });
  });
});

describe('key material is parsed for its declared type at open', () => {
  const der = (k: { privateKey: KeyObject }) =>
    (k.privateKey.export({ format: 'der', type: 'pkcs8' }) as Buffer).toString('base64');
  const rsa2048 = der(generateKeyPairSync('rsa', { modulusLength: 2048 }));
  const p256 = der(generateKeyPairSync('ec', { namedCurve: 'P-256' }));
  const p384 = der(generateKeyPairSync('ec', { namedCurve: 'P-384' }));
  const ed25519 = der(generateKeyPairSync('ed25519'));
  const wrong: Record<KeySpec, string> = {
    AES_256: Buffer.alloc(31).toString('base64'),
    HMAC_256: Buffer.alloc(16).toString('base64'),
    RSA_2048: p256,
    RSA_3072: rsa2048,
    RSA_4096: ed25519,
    EC_P256: rsa2048,
    EC_P384: p256,
  };
  const usage = (spec: KeySpec) =>
    spec === 'AES_256' ? 'encrypt_decrypt' : spec === 'HMAC_256' ? 'mac' : 'sign_verify';

  for (const spec of Object.keys(wrong) as KeySpec[]) {
    it(`an ${spec} key holding the wrong material is Integrity at open`, async () => {
      const { kp, path } = await newKeystore();
      await kp.createKey({ name: 'k', spec: 'EC_P384' }, o);
      await editBody(path, (b) => {
        const key = b.keys[0] as Body['keys'][number];
        key.spec = spec;
        key.usage = usage(spec);
        (key.versions[0] as Record<string, unknown>).material = wrong[spec];
      });
      await expectCode(open({ path }), 'Integrity');
    });
  }

  it('the right material of each type opens (the check is not too strict)', async () => {
    const { kp, path } = await newKeystore();
    await kp.createKey({ name: 'k', spec: 'EC_P384' }, o);
    await editBody(path, (b) => {
      const key = b.keys[0] as Body['keys'][number];
      key.versions.push({ ...key.versions[0], version: 2, material: p384 });
    });
    const reopened = await open({ path });
    const sig = await reopened.sign({ uri: reopened.keyUri('k', '2') }, new Uint8Array(3), {}, o);
    expect(sig.algorithm).toBe('ECDSA_SHA_384');
  });

  it('an import job whose wrapping key is not RSA-3072 is Integrity at open', async () => {
    const { kp, path } = await newKeystore();
    const key = await kp.createKey({ name: 'byok', spec: 'AES_256', external: true }, o);
    await kp.getImportParameters({ uri: key.uri }, {}, o);
    await editBody(path, (b) => {
      (b.keys[0]?.importJob as Record<string, unknown>).wrappingKey = rsa2048;
    });
    await expectCode(open({ path }), 'Integrity');
  });
});

describe('leftovers of killed processes', () => {
  it('temps, a dead holder’s lock and break marker (and their temps) are removed on open', async () => {
    const { kp, path } = await newKeystore();
    await kp.close();
    const dead = await deadPid();
    const deadName = (prefix: string) => tempName(path, prefix).replace(`.${process.pid}.`, `.${dead}.`);
    const content = JSON.stringify({
      pid: dead,
      host: hostname(),
      nonce: 'n',
      createdAt: new Date().toISOString(),
    });
    const leftovers = [
      deadName(`.${basename(path)}`),
      deadName(`${basename(path)}.lock`),
      deadName(`${basename(path)}.lock.break`),
    ];
    for (const file of leftovers) await writeFile(file, 'sealed copy of an old state');
    await writeFile(`${path}.lock`, content);
    await writeFile(`${path}.lock.break`, content);
    // A live process's temp stays: it may be writing.
    const live = tempName(path, `.${basename(path)}`);
    await writeFile(live, 'in progress');
    await open({ path });
    expect((await readdir(dirname(path))).sort()).toEqual([basename(path), basename(live)].sort());
  });
});

describe('no write after a deadline', () => {
  it('a createKey whose deadline passed during the mutation is not written', async () => {
    const clock = new FakeClock();
    let slow = false;
    const path = join(await tempDir(), 'k.keystore');
    const kp = await openLocalKeystore({
      path,
      passphrase: PASSPHRASE,
      kdf: FAST_KDF,
      create: true,
      clock: () => {
        if (slow) {
          const until = performance.now() + 80;
          while (performance.now() < until) {
            // the deadline passes while the mutation is applied
          }
        }
        return clock.now();
      },
    });
    try {
      const keyport = new Keyport({ providers: [kp], retry: { maxAttempts: 1 } });
      const before = sha256(await readFile(path));
      slow = true;
      const error = await keyport
        .createKey('local', { name: 'late', spec: 'AES_256' }, { timeoutMs: 20 })
        .catch((e: unknown) => e);
      slow = false;
      expect(error).toMatchObject({ code: 'Timeout' });
      // A mutation queued behind it has run once this one resolves: the late one is settled.
      await kp.createKey({ name: 'after', spec: 'AES_256' }, o);
      await expectCode(kp.describeKey({ uri: kp.keyUri('late') }, o), 'NotFound');
      expect(sha256(await readFile(path))).not.toBe(before);
    } finally {
      await kp.close();
    }
  });

  it('an RSA createKey that times out during key generation is not written', async () => {
    const { kp } = await newKeystore();
    const keyport = new Keyport({ providers: [kp], retry: { maxAttempts: 1 } });
    const error = await settlesWithin(
      1_000,
      keyport
        .createKey('local', { name: 'rsa', spec: 'RSA_2048' }, { timeoutMs: 5 })
        .catch((e: unknown) => e),
    );
    expect(error).toMatchObject({ code: 'Timeout' });
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // generation would have finished
    await kp.createKey({ name: 'after', spec: 'AES_256' }, o);
    await expectCode(kp.describeKey({ uri: kp.keyUri('rsa') }, o), 'NotFound');
  });
});

/**
 * Two processes adding keys to one keystore at the same time lose nothing. The workers run
 * the package compiled by tsc into a temp dir (Node 20 cannot import the TypeScript sources).
 * A reader whose body is cached still sees a key another process added since.
 */
import { spawn } from 'node:child_process';
import { lstat, readdir, symlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, newKeystore, o, open, PASSPHRASE, tempKeystorePath } from './helpers.js';
import { compileWorkerBuild, testDir } from './worker-build.js';

let entry = '';
let dispose: (() => Promise<void>) | undefined;

function startWorker(keystore: string, prefix: string, count: number, startFile: string) {
  return startScript('add-keys-worker.mjs', [keystore, PASSPHRASE, prefix, String(count), startFile], prefix);
}

/** Runs a fixture script on the compiled package; `stdout()` is what it printed so far. */
function startScript(script: string, args: string[], prefix: string) {
  const child = spawn(process.execPath, [join(testDir, 'fixtures', script), entry, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const ready = new Promise<void>((resolveReady, reject) => {
    const timer = setInterval(() => {
      if (stdout.includes('ready')) {
        clearInterval(timer);
        resolveReady();
      }
    }, 5);
    child.on('exit', () => {
      clearInterval(timer);
      if (!stdout.includes('ready')) reject(new Error(`worker ${prefix} died before start: ${stderr}`));
    });
  });
  const exited = new Promise<void>((resolveExit, reject) =>
    child.on('exit', (code) =>
      code === 0 && stdout.includes('done')
        ? resolveExit()
        : reject(new Error(`worker ${prefix} failed (${code}): ${stderr}`)),
    ),
  );
  exited.catch(() => undefined); // awaited by the test; a failure before start surfaces via `ready`
  return { ready, exited, kill: () => child.kill(), stdout: () => stdout };
}

type Started = ReturnType<typeof startScript>;

/** Lets `workers` go at once (they wait for `startFile`) and waits for all of them to exit. */
async function runTogether(workers: Started[], startFile: string): Promise<void> {
  try {
    await Promise.all(workers.map((w) => w.ready));
    await writeFile(startFile, 'go');
    await Promise.all(workers.map((w) => w.exited));
  } finally {
    for (const w of workers) w.kill();
  }
}

describe('concurrent writers in separate processes', () => {
  beforeAll(async () => {
    ({ entry, dispose } = await compileWorkerBuild());
  }, 60_000);
  afterAll(async () => {
    await dispose?.();
  });

  it('two processes adding keys at once both keep all their keys', async () => {
    const { kp, path } = await newKeystore({ kdf: { log2N: 10 } });
    await kp.createKey({ name: 'existing', spec: 'AES_256' }, o);
    const startFile = `${path}.start`;
    const count = 15;
    await runTogether(
      [startWorker(path, 'alpha', count, startFile), startWorker(path, 'beta', count, startFile)],
      startFile,
    );
    const names = (await collect(kp.listKeys(o))).map((k) => k.uri.split('#')[1]).sort();
    const expected = ['existing'];
    for (let i = 0; i < count; i++) expected.push(`alpha-${i}`, `beta-${i}`);
    expect(names).toEqual(expected.sort());
  });

  it('a key another process adds between two reads is seen at the next read (cached body, one stat)', async () => {
    const { kp, path } = await newKeystore({ kdf: { log2N: 10 } });
    const existing = await kp.createKey({ name: 'existing', spec: 'AES_256' }, o);
    // Warm: these reads are served from the cache.
    for (let i = 0; i < 5; i++) await kp.encrypt({ uri: existing.uri }, new Uint8Array(4), {}, o);
    const startFile = `${path}.start`;
    await writeFile(startFile, 'go');
    const other = startWorker(path, 'gamma', 1, startFile);
    try {
      await other.exited;
    } finally {
      other.kill();
    }
    const added = await kp.describeKey({ uri: kp.keyUri('gamma-0') }, o);
    expect(added.state).toBe('enabled');
    const names = (await collect(kp.listKeys(o))).map((k) => k.uri.split('#')[1]).sort();
    expect(names).toEqual(['existing', 'gamma-0']);
  });
  it('a process writing through a symbolic link and one writing to the file itself lose nothing', async () => {
    const { kp, path } = await newKeystore({ kdf: { log2N: 10 } });
    const link = join(dirname(path), 'link.keystore');
    await symlink(path, link);
    const startFile = `${path}.start`;
    const count = 10;
    await runTogether(
      [startWorker(link, 'vialink', count, startFile), startWorker(path, 'direct', count, startFile)],
      startFile,
    );
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    const expected: string[] = [];
    for (let i = 0; i < count; i++) expected.push(`vialink-${i}`, `direct-${i}`);
    for (const reader of [kp, await open({ path: link })]) {
      const names = (await collect(reader.listKeys(o))).map((k) => k.uri.split('#')[1]).sort();
      expect(names).toEqual(expected.sort());
    }
  });

  it('two processes creating the same missing keystore at once: one creates it, nothing is lost', async () => {
    const path = await tempKeystorePath();
    const startFile = `${path}.start`;
    const run = (passphrase: string, principal: string) =>
      startScript('create-worker.mjs', [path, passphrase, principal, startFile], principal);
    // Same passphrase: both end up in one keystore, owned by whichever created it.
    const same = [run(PASSPHRASE, 'alice'), run(PASSPHRASE, 'bob')];
    await runTogether(same, startFile);
    const outcomes = same.map((w) => w.stdout().split('\n')[1]);
    const creator = (await open({ path })).principal;
    expect(['alice', 'bob']).toContain(creator);
    // The creator owns the keystore and adds its key; the other is not the owner: AccessDenied.
    expect(outcomes.sort()).toEqual(['error AccessDenied', `ok ${creator}`]);
    const names = (await collect((await open({ path })).listKeys(o))).map((k) => k.uri.split('#')[1]);
    expect(names).toEqual([`by-${creator}`]);
    expect((await readdir(dirname(path))).filter((f) => f.startsWith(basename(path)))).toEqual([
      basename(path),
      basename(startFile),
    ]);
  });

  it('two processes creating one keystore with different passphrases: one wins, the other is AccessDenied', async () => {
    const path = await tempKeystorePath();
    const startFile = `${path}.start`;
    const workers = [
      startScript('create-worker.mjs', [path, 'passphrase one', 'owner', startFile], 'one'),
      startScript('create-worker.mjs', [path, 'passphrase two', 'owner', startFile], 'two'),
    ];
    await runTogether(workers, startFile);
    const outcomes = workers.map((w) => w.stdout().split('\n')[1]);
    expect([...outcomes].sort()).toEqual(['error AccessDenied', 'ok owner']);
    const winner = outcomes[0] === 'ok owner' ? 'passphrase one' : 'passphrase two';
    const kp = await open({ path, passphrase: winner });
    expect((await collect(kp.listKeys(o))).map((k) => k.uri.split('#')[1])).toEqual(['by-owner']);
  });

  it('two processes creating, rotating, destroying and scheduling deletion at once lose nothing', async () => {
    const { kp, path } = await newKeystore({ kdf: { log2N: 10 } });
    await kp.createKey({ name: 'shared', spec: 'AES_256' }, o);
    const startFile = `${path}.start`;
    const count = 6;
    const workers = ['red', 'blue'].map((prefix) =>
      startScript('mixed-ops-worker.mjs', [path, PASSPHRASE, prefix, String(count), startFile], prefix),
    );
    await runTogether(workers, startFile);
    for (const prefix of ['red', 'blue']) {
      for (let i = 0; i < count; i++) {
        const key = await kp.describeKey({ uri: kp.keyUri(`${prefix}-${i}`) }, o);
        expect(key.state).toBe(i % 3 === 0 ? 'pending_deletion' : 'enabled');
        expect(key.primaryVersion).toBe('2');
        expect(key.versions?.map((v) => [v.version, v.state])).toEqual([
          ['1', 'destroyed'],
          ['2', 'enabled'],
        ]);
      }
    }
    // Every rotation of the shared key by either process is kept, and every ciphertext either
    // process made under it (each under the version it rotated to, or a later one) decrypts.
    const shared = await kp.describeKey({ uri: kp.keyUri('shared') }, o);
    expect(shared.primaryVersion).toBe(String(1 + 2 * count));
    const ciphertexts = workers.flatMap((w) =>
      w
        .stdout()
        .split('\n')
        .filter((l) => l.startsWith('ct '))
        .map((l) => Buffer.from(l.slice(3), 'base64')),
    );
    expect(ciphertexts.length).toBe(2 * count);
    const plaintexts = await Promise.all(
      ciphertexts.map(async (c) =>
        Buffer.from((await kp.decrypt({ uri: shared.uri }, c, {}, o)).plaintext).toString(),
      ),
    );
    const expected = ['red', 'blue'].flatMap((p) => Array.from({ length: count }, (_, i) => `${p}-${i}`));
    expect(plaintexts.sort()).toEqual(expected.sort());
  });
});

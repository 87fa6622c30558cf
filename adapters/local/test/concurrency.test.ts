/**
 * Two processes adding keys to one keystore at the same time lose nothing. The workers run
 * the package compiled by tsc into a temp dir (Node 20 cannot import the TypeScript sources).
 * A reader whose body is cached still sees a key another process added since.
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, newKeystore, o, PASSPHRASE } from './helpers.js';
import { compileWorkerBuild, testDir } from './worker-build.js';

let entry = '';
let dispose: (() => Promise<void>) | undefined;

function startWorker(keystore: string, prefix: string, count: number, startFile: string) {
  const child = spawn(
    process.execPath,
    [
      join(testDir, 'fixtures/add-keys-worker.mjs'),
      entry,
      keystore,
      PASSPHRASE,
      prefix,
      String(count),
      startFile,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
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
  return { ready, exited, kill: () => child.kill() };
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
    const workers = [
      startWorker(path, 'alpha', count, startFile),
      startWorker(path, 'beta', count, startFile),
    ];
    try {
      await Promise.all(workers.map((w) => w.ready));
      await writeFile(startFile, 'go');
      await Promise.all(workers.map((w) => w.exited));
    } finally {
      for (const w of workers) w.kill();
    }
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
});

/**
 * Killed writers: a child process adds keys and rotates one, and is SIGKILLed at a random
 * moment, many times over. After every kill the keystore must open (the old or the new
 * state, never a damaged file), keep every write the child saw complete, and take the next
 * write at once: the dead writer's lock is stale (its pid is gone) and is broken, and what it
 * left behind (temp files) is cleaned up and never read.
 */
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, newKeystore, o, open, PASSPHRASE } from './helpers.js';
import { compileWorkerBuild, testDir } from './worker-build.js';

let entry = '';
let dispose: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ entry, dispose } = await compileWorkerBuild());
}, 60_000);
afterAll(async () => {
  await dispose?.();
});

/** A deterministic pseudo-random sequence (so a failure can be replayed). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s / 0x1_0000_0000;
  };
}

/** Runs the churn worker, kills it `delayMs` after it is ready; returns what it reported done. */
async function runAndKill(keystore: string, prefix: string, delayMs: number) {
  const child = spawn(
    process.execPath,
    [join(testDir, 'fixtures/churn-worker.mjs'), entry, keystore, PASSPHRASE, prefix],
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
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.on('exit', (_code, sig) => resolve(sig)),
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (stdout.includes('ready\n')) {
        clearInterval(timer);
        resolve();
      }
    }, 2);
    void exited.then(() => {
      clearInterval(timer);
      reject(new Error(`churn worker died before it was ready: ${stderr}`));
    });
  });
  await new Promise((r) => setTimeout(r, delayMs));
  child.kill('SIGKILL');
  const signal = await exited;
  if (signal !== 'SIGKILL') throw new Error(`churn worker stopped by itself: ${stderr}`);
  const done = stdout
    .split('\n')
    .filter((l) => l.startsWith('ok '))
    .map((l) => l.slice(3));
  const rotations = stdout.split('\n').filter((l) => l.startsWith('rotated ')).length;
  return { done, rotations };
}

async function leftovers(path: string): Promise<string[]> {
  const name = basename(path);
  return (await readdir(dirname(path))).filter((f) => f !== name && f.includes(name));
}

describe('writers killed mid-write', () => {
  it('the keystore always opens, keeps completed writes, and the next writer is not blocked', async () => {
    const { kp, path } = await newKeystore({ kdf: { log2N: 10 } });
    await kp.createKey({ name: 'base', spec: 'AES_256' }, o);
    const random = lcg(0x5eed);
    const committed: string[] = [];
    let rotations = 0;
    const iterations = 30;
    for (let i = 0; i < iterations; i++) {
      // Most kills land within the first writes; some after a few dozen.
      const delay = Math.floor(random() ** 2 * 150);
      const run = await runAndKill(path, `w${i}`, delay);
      committed.push(...run.done);
      rotations += run.rotations;
      // A fresh handle, as a restarted application would open it: never damaged.
      const reopened = await open({ path, lockTimeoutMs: 2_000 });
      const names = new Set((await collect(reopened.listKeys(o))).map((k) => k.uri.split('#')[1]));
      for (const n of committed) expect(names.has(n), `write "${n}" lost after kill #${i}`).toBe(true);
      // The next writer gets the lock well within 2 s: a dead pid's lock is broken at once.
      await reopened.createKey({ name: `parent-${i}`, spec: 'HMAC_256' }, o);
      committed.push(`parent-${i}`);
      // Whatever the killed writer left (temp files, lock) is gone after a completed write.
      expect(await leftovers(path), `after kill #${i}`).toEqual([]);
    }
    const base = await kp.describeKey({ uri: kp.keyUri('base') }, o);
    expect(Number(base.primaryVersion)).toBeGreaterThanOrEqual(1 + rotations);
    expect(committed.length).toBeGreaterThan(iterations);
  }, 60_000);
});

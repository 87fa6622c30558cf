/**
 * The general inter-process lock file (the audit log's lock is one use of it): one holder at a
 * time, a wait bounded by `timeoutMs` and ended by the caller's signal, errors naming what the
 * lock guards, and a lock whose owner died broken by the next waiter.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  closeSync,
  constants,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireFileLock } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'keyport-file-lock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const lockPath = () => join(dir, `l${++n}.lock`);

describe('acquireFileLock', () => {
  it('has one holder at a time: a second waits until the first releases', async () => {
    const path = lockPath();
    const first = await acquireFileLock(path);
    let second: Awaited<ReturnType<typeof acquireFileLock>> | undefined;
    const waiting = acquireFileLock(path).then((l) => {
      second = l;
      return l;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(second).toBeUndefined();
    await first.release();
    await (await waiting).release();
    expect(existsSync(path)).toBe(false);
  });

  it('gives up after timeoutMs, naming what the lock guards', async () => {
    const path = lockPath();
    const held = await acquireFileLock(path);
    await expect(acquireFileLock(path, { timeoutMs: 50, what: 'the test lock' })).rejects.toMatchObject({
      code: 'Unavailable',
      message: 'the test lock was held for more than 50 ms',
      retryable: false,
    });
    await held.release();
  });

  it("stops waiting when the caller's signal fires, leaving the holder's lock alone", async () => {
    const path = lockPath();
    const held = await acquireFileLock(path);
    const before = readFileSync(path, 'utf8');
    const controller = new AbortController();
    const waiting = acquireFileLock(path, { timeoutMs: 60_000, signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await expect(waiting).rejects.toMatchObject({ code: 'Aborted' });
    expect(readFileSync(path, 'utf8')).toBe(before);
    await held.release();
  });

  it('a lock with our own pid from before this process started is broken (a restarted container); one made since is held', async () => {
    const left = lockPath();
    writeFileSync(left, JSON.stringify({ pid: process.pid, host: hostname(), nonce: 'earlier-process' }));
    // Made before this process started, as by a killed process that had the same pid.
    const before = new Date(performance.timeOrigin - 60_000);
    utimesSync(left, before, before);
    const taken = await acquireFileLock(left, { timeoutMs: 2_000, staleMs: 3_600_000 });
    expect(JSON.parse(readFileSync(left, 'utf8'))).toMatchObject({ pid: process.pid });
    await taken.release();
    // The same content made now is a lock of this process: waited for, never broken.
    const ours = lockPath();
    writeFileSync(ours, JSON.stringify({ pid: process.pid, host: hostname(), nonce: 'this-process' }));
    await expect(acquireFileLock(ours, { timeoutMs: 300, staleMs: 3_600_000 })).rejects.toMatchObject({
      code: 'Unavailable',
    });
    expect(JSON.parse(readFileSync(ours, 'utf8'))).toMatchObject({ nonce: 'this-process' });
  });

  it('an aborted signal takes no lock, even a free one', async () => {
    const path = lockPath();
    await expect(acquireFileLock(path, { signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'Aborted',
    });
    expect(existsSync(path)).toBe(false);
  });

  it('breaks a lock whose owner on this host is gone', async () => {
    const path = lockPath();
    const gone = spawnSync(process.execPath, ['-e', '']).pid;
    writeFileSync(path, JSON.stringify({ pid: gone, host: hostname(), nonce: 'dead' }));
    const lock = await acquireFileLock(path, { timeoutMs: 10_000 });
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ pid: process.pid });
    await lock.release();
  });

  describe('a lock path someone replaced with something else', () => {
    /** Settles with the promise, or with 'hung' once `ms` pass. */
    const within = <T>(p: Promise<T>, ms: number): Promise<T | 'hung'> =>
      Promise.race([p, new Promise<'hung'>((r) => setTimeout(() => r('hung'), ms).unref())]);
    /** Opens a FIFO's write end once, so a reader blocked in open(2) (a hung test) is let go. */
    const unblock = (fifo: string): void => {
      try {
        closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
      } catch {
        // no reader waiting: nothing to let go
      }
    };

    it('a FIFO: the wait still ends at timeoutMs (a blocking read of it waited for ever)', async () => {
      const path = lockPath();
      execFileSync('mkfifo', [path]);
      try {
        const outcome = await within(
          acquireFileLock(path, { timeoutMs: 300 }).then(
            () => 'taken',
            (e: unknown) => e,
          ),
          5_000,
        );
        expect(outcome).toMatchObject({ code: 'Unavailable' });
      } finally {
        unblock(path);
      }
    });

    it('a FIFO put in place of a held lock: release returns (and leaves it)', async () => {
      const path = lockPath();
      const held = await acquireFileLock(path);
      unlinkSync(path);
      execFileSync('mkfifo', [path]);
      try {
        expect(await within(held.release(), 5_000)).toBeUndefined();
      } finally {
        unblock(path);
      }
    });

    it('a link to /dev/zero is an ownerless lock judged by its own age, never read', async () => {
      const path = lockPath();
      symlinkSync('/dev/zero', path);
      const before = process.resourceUsage().maxRSS;
      const started = Date.now();
      const lock = await acquireFileLock(path, { timeoutMs: 10_000 });
      // Ownerless locks are broken once 2 s old, by the link's time (the device's is the boot's).
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_500);
      // Reading it to the end took a gigabyte or more before giving up.
      expect((process.resourceUsage().maxRSS - before) / 1024).toBeLessThan(256);
      expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ pid: process.pid });
      await lock.release();
    });
  });
});

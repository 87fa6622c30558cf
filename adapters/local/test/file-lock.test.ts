import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { tempName } from '../src/atomic-write.js';
import { acquireLock } from '../src/file-lock.js';
import { expectCode, newKeystore, o, open, tempKeystorePath } from './helpers.js';

/** The pid of a process that has exited (so no process runs under it for now). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  const pid = child.pid as number;
  await new Promise((resolve) => child.on('exit', resolve));
  return pid;
}

const lockContent = (pid: number, host = hostname(), createdAt = new Date()) =>
  JSON.stringify({ pid, host, nonce: `n${pid}`, createdAt: createdAt.toISOString() });

/** Before this process started: what a killed earlier process that had our pid left. */
const beforeWeStarted = () => new Date(performance.timeOrigin - 60_000);

describe('inter-process lock', () => {
  it('is exclusive: a second acquirer waits until the first releases', async () => {
    const path = await tempKeystorePath();
    const first = await acquireLock(path);
    const order: string[] = [];
    const second = acquireLock(path).then((lock) => {
      order.push('second acquired');
      return lock;
    });
    await new Promise((r) => setTimeout(r, 50));
    order.push('first releasing');
    await first.release();
    await (await second).release();
    expect(order).toEqual(['first releasing', 'second acquired']);
    await expect(stat(`${path}.lock`)).rejects.toThrow();
  });

  it('times out with Timeout when the holder is alive', async () => {
    const path = await tempKeystorePath();
    await writeFile(`${path}.lock`, lockContent(process.pid));
    await expectCode(acquireLock(path, { timeoutMs: 80 }), 'Timeout');
  });

  it('honours an AbortSignal while waiting', async () => {
    const path = await tempKeystorePath();
    await writeFile(`${path}.lock`, lockContent(process.pid));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 30);
    await expectCode(acquireLock(path, { signal: controller.signal, timeoutMs: 5_000 }), 'Aborted');
  });

  it('breaks a stale lock left by a dead process on this host', async () => {
    const path = await tempKeystorePath();
    await writeFile(`${path}.lock`, lockContent(await deadPid()));
    const lock = await acquireLock(path, { timeoutMs: 2_000 });
    const held = JSON.parse(await readFile(`${path}.lock`, 'utf8')) as { pid: number };
    expect(held.pid).toBe(process.pid);
    await lock.release();
  });

  it('breaks a lock an earlier process with our own pid left (a restarted container)', async () => {
    // A container's app killed mid-write and restarted keeps its hostname and gets the same pid
    // (often 1): the lock names a pid that runs, ours, but it is older than this process.
    const path = await tempKeystorePath();
    await writeFile(`${path}.lock`, lockContent(process.pid, hostname(), beforeWeStarted()));
    const lock = await acquireLock(path, { timeoutMs: 2_000 });
    const held = JSON.parse(await readFile(`${path}.lock`, 'utf8')) as { nonce: string };
    expect(held.nonce).not.toBe(`n${process.pid}`);
    await lock.release();
  });

  it.runIf(process.platform === 'linux')(
    "a lock this very process took is not broken when the wall clock has gone back past the process's start",
    async () => {
      // The lock as acquireLock writes it (our pid, boot, pid namespace, start time) after the
      // clock was stepped back (NTP, a resumed VM): its createdAt lies before this process began.
      // Before: a second writer of this process took it for an earlier process's lock, broke it
      // while it was held and wrote at the same time.
      const path = await tempKeystorePath();
      const held = await acquireLock(path, { timeoutMs: 1_000 });
      try {
        const content = JSON.parse(await readFile(`${path}.lock`, 'utf8')) as Record<string, unknown>;
        expect(content.started).toEqual(expect.any(String));
        await writeFile(`${path}.lock`, JSON.stringify({ ...content, createdAt: beforeWeStarted() }));
        await expectCode(acquireLock(path, { timeoutMs: 100 }), 'Timeout');
        expect(JSON.parse(await readFile(`${path}.lock`, 'utf8'))).toMatchObject({ nonce: content.nonce });
      } finally {
        await held.release();
      }
      await expect(stat(`${path}.lock`)).rejects.toThrow();
    },
  );

  it('a restarted process with the pid of the killed writer is not locked out of its keystore', async () => {
    const { path } = await newKeystore();
    await writeFile(`${path}.lock`, lockContent(process.pid, hostname(), beforeWeStarted()));
    await writeFile(`${path}.lock.break`, lockContent(process.pid, hostname(), beforeWeStarted()));
    const kp = await open({ path, lockTimeoutMs: 2_000 });
    await kp.createKey({ name: 'after-restart', spec: 'AES_256' }, o);
    expect(await readdir(dirname(path))).toEqual([basename(path)]);
  });

  it('never breaks a lock written on another host', async () => {
    const path = await tempKeystorePath();
    await writeFile(`${path}.lock`, lockContent(await deadPid(), 'some-other-host.example'));
    await expectCode(acquireLock(path, { timeoutMs: 80 }), 'Timeout');
  });

  it('breaks an unreadable lock only once it is old', async () => {
    const path = await tempKeystorePath();
    await writeFile(`${path}.lock`, '');
    await expectCode(acquireLock(path, { timeoutMs: 80 }), 'Timeout');
    const old = new Date(Date.now() - 60_000);
    await utimes(`${path}.lock`, old, old);
    await (await acquireLock(path, { timeoutMs: 1_000 })).release();
  });

  it('a keystore write waits for the lock and gives up with Timeout, writing nothing', async () => {
    const { kp, path } = await newKeystore({ lockTimeoutMs: 100 });
    const before = await readFile(path);
    await writeFile(`${path}.lock`, lockContent(process.pid));
    await expectCode(kp.createKey({ name: 'k', spec: 'AES_256' }, o), 'Timeout');
    expect((await readFile(path)).equals(before)).toBe(true);
  });

  it('a wall clock stepped back while waiting does not stretch lockTimeoutMs', async () => {
    const { kp, path } = await newKeystore({ lockTimeoutMs: 200 });
    await writeFile(`${path}.lock`, lockContent(process.pid));
    const realNow = Date.now.bind(Date);
    // NTP stepping the clock back an hour, 50 ms into the wait (only Date.now: timers and
    // performance.now are monotonic, as the kernel's are).
    setTimeout(() => vi.spyOn(Date, 'now').mockImplementation(() => realNow() - 3_600_000), 50);
    const started = performance.now();
    try {
      // Before: the deadline was wall-clock time, so the wait went on for the hour; only this
      // call's own 5 s signal ended it.
      await expectCode(
        kp.createKey({ name: 'k', spec: 'AES_256' }, { signal: AbortSignal.timeout(5_000) }),
        'Timeout',
      );
      expect(performance.now() - started).toBeLessThan(2_000);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('a keystore write waiting for the lock stops when aborted', async () => {
    const { kp, path } = await newKeystore();
    await writeFile(`${path}.lock`, lockContent(process.pid));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 30);
    await expectCode(kp.createKey({ name: 'k', spec: 'AES_256' }, { signal: controller.signal }), 'Aborted');
  });

  it.runIf(process.platform !== 'win32')(
    'releasing does not hang when a FIFO was put where our lock was',
    async () => {
      const path = await tempKeystorePath();
      const lock = await acquireLock(path);
      await rm(`${path}.lock`);
      execFileSync('mkfifo', [`${path}.lock`]);
      // Before: releaseSync's blocking read waited for a writer; this one comes after 2 s, so the
      // old code returns then instead of never (the whole process was stuck, timers included).
      const writer = spawn('sh', ['-c', 'sleep 2; echo x > "$0"', `${path}.lock`], { stdio: 'ignore' });
      try {
        const started = performance.now();
        lock.releaseSync();
        expect(performance.now() - started).toBeLessThan(1_000);
        expect((await stat(`${path}.lock`)).isFIFO()).toBe(true); // not ours: left alone
      } finally {
        writer.kill();
      }
    },
  );

  it('concurrent writes from one process all land', async () => {
    const { kp } = await newKeystore();
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => kp.createKey({ name: `k${i}`, spec: 'HMAC_256' }, o)),
    );
    const names: string[] = [];
    for await (const k of kp.listKeys(o)) names.push(k.uri.split('#')[1] as string);
    expect(names.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `k${i}`).sort());
  });
});

/** Linux's names for this boot, this pid namespace and a process's start (see file-lock). */
const proc = () => {
  const stat = readFileSync(`/proc/${process.ppid}/stat`, 'utf8');
  return {
    boot: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
    pidns: readlinkSync('/proc/self/ns/pid'),
    timens: (() => {
      try {
        return readlinkSync('/proc/self/ns/time');
      } catch {
        return undefined; // a kernel without time namespaces (before 5.6)
      }
    })(),
    parentStarted: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] as string,
  };
};

/** A lock naming `pid` (a live process: our parent), with the given identity fields. */
const lockOf = (
  pid: number,
  identity: { boot: string; pidns: string; timens: string | undefined; started: string },
) =>
  JSON.stringify({
    pid,
    host: hostname(),
    nonce: `n${pid}`,
    createdAt: new Date().toISOString(),
    ...identity,
  });

describe.runIf(process.platform === 'linux')('a lock whose pid was handed to another process', () => {
  it('is broken when the pid now names a process started at another time (same boot)', async () => {
    // Before: the pid ran (another process had it), so the lock was never broken and every
    // write of the keystore timed out until someone deleted the lock by hand.
    const { boot, pidns, timens } = proc();
    const { kp, path } = await newKeystore({ lockTimeoutMs: 2_000 });
    await writeFile(`${path}.lock`, lockOf(process.ppid, { boot, pidns, timens, started: '1' }));
    await kp.createKey({ name: 'after-reuse', spec: 'AES_256' }, o);
    expect(await readdir(dirname(path))).toEqual([basename(path)]);
  });

  it('is broken when it was written during an earlier boot of this machine', async () => {
    const { pidns, timens, parentStarted } = proc();
    const path = await tempKeystorePath();
    await writeFile(
      `${path}.lock`,
      lockOf(process.ppid, { boot: 'an-earlier-boot', pidns, timens, started: parentStarted }),
    );
    const longAgo = new Date('2001-01-01T00:00:00Z');
    await utimes(`${path}.lock`, longAgo, longAgo);
    await (await acquireLock(path, { timeoutMs: 2_000 })).release();
  });

  it('is kept while pid and start time still name its holder, or cannot be compared', async () => {
    const { boot, pidns, timens, parentStarted } = proc();
    const path = await tempKeystorePath();
    for (const identity of [
      { boot, pidns, timens, started: parentStarted }, // the holder itself
      { boot, pidns: 'pid:[1]', timens, started: '1' }, // another pid namespace: its pids are not ours
      { boot, pidns, timens: 'time:[1]', started: '1' }, // another time namespace: start times shifted
      { boot: 'another-boot', pidns, timens, started: '1' }, // written since this boot: another machine?
    ]) {
      await writeFile(`${path}.lock`, lockOf(process.ppid, identity));
      await expectCode(acquireLock(path, { timeoutMs: 100 }), 'Timeout');
    }
  });

  it('is kept when written in another pid namespace of this boot, whatever its pid is here', async () => {
    // Before: a pid absent here (or ours: pid 1 is in every container) was taken for a dead
    // holder, and the live holder's lock, in a container sharing the host name, was broken.
    const { boot, timens } = proc();
    const path = await tempKeystorePath();
    const elsewhere = { boot, pidns: 'pid:[4026530001]', timens, started: '1' };
    for (const [pid, createdAt] of [
      [await deadPid(), new Date()],
      [process.pid, beforeWeStarted()],
    ] as const) {
      const lock = JSON.parse(lockOf(pid, elsewhere)) as Record<string, unknown>;
      await writeFile(`${path}.lock`, JSON.stringify({ ...lock, createdAt: createdAt.toISOString() }));
      await expectCode(acquireLock(path, { timeoutMs: 300 }), 'Timeout');
    }
  });

  it('a lock this process writes carries its boot, pid namespace and start time', async () => {
    const path = await tempKeystorePath();
    const lock = await acquireLock(path);
    const held = JSON.parse(await readFile(`${path}.lock`, 'utf8')) as Record<string, unknown>;
    await lock.release();
    const { boot, pidns, timens } = proc();
    expect(held).toMatchObject({ pid: process.pid, boot, pidns, ...(timens ? { timens } : {}) });
    expect(held.started).toMatch(/^[0-9]+$/);
  });
});

describe('what killed writers leave behind', () => {
  it('a break marker left by a dead breaker does not block waiters', async () => {
    const path = await tempKeystorePath();
    await writeFile(`${path}.lock`, lockContent(await deadPid()));
    // Before: any marker younger than 10 s made every waiter wait it out (Timeout here).
    await writeFile(`${path}.lock.break`, lockContent(await deadPid()));
    const lock = await acquireLock(path, { timeoutMs: 1_000 });
    await lock.release();
    expect(await readdir(dirname(path))).toEqual([]);
  });

  it('a break marker of a live breaker is respected', async () => {
    const path = await tempKeystorePath();
    await writeFile(`${path}.lock`, lockContent(await deadPid()));
    await writeFile(`${path}.lock.break`, lockContent(process.ppid));
    await expectCode(acquireLock(path, { timeoutMs: 100 }), 'Timeout');
  });

  it('temp files of dead writers on this host are removed by the next write; live ones are kept', async () => {
    const { kp, path } = await newKeystore();
    const dead = await deadPid();
    const named = (prefix: string, pid: number) =>
      basename(tempName(path, prefix)).replace(`.${process.pid}.`, `.${pid}.`);
    const orphans = [named(`.${basename(path)}`, dead), named(`${basename(path)}.lock`, dead)];
    const live = named(`.${basename(path)}`, process.ppid);
    // Our own pid: older than this process, an earlier process's (a restarted container); newer, ours.
    const earlierSamePid = named(`.${basename(path)}`, process.pid);
    const ownInFlight = named(`.${basename(path)}`, process.pid);
    const foreign = `.${basename(path)}.0badc0de.${dead}.00aa11bb22cc.tmp`; // another host
    for (const f of [...orphans, live, foreign, earlierSamePid, ownInFlight]) {
      await writeFile(join(dirname(path), f), 'x');
    }
    await utimes(join(dirname(path), earlierSamePid), beforeWeStarted(), beforeWeStarted());
    await kp.createKey({ name: 'k', spec: 'AES_256' }, o);
    const left = await readdir(dirname(path));
    for (const f of [...orphans, earlierSamePid]) expect(left).not.toContain(f);
    expect(left).toContain(live);
    expect(left).toContain(foreign);
    expect(left).toContain(ownInFlight);
  });
});

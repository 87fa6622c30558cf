/**
 * Containers on one machine that share a hostname and a volume, each with its own pid
 * namespace: a lock holder's pid from another namespace names nothing (or an unrelated
 * process) here. Its live lock was broken as dead, and two writers appended at once. Run with
 * real processes in a new pid namespace (`unshare`, root on Linux), the same hostname kept.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireAuditLock } from '../src/audit-lock.js';

const HOOKS = fileURLToPath(new URL('../../cli/test/support/register-ts.mjs', import.meta.url));
const HOLDER = fileURLToPath(new URL('./support/lock-holder.mjs', import.meta.url));

const canUnshare =
  process.platform === 'linux' &&
  spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true'], { stdio: 'ignore' }).status === 0;

const dir = mkdtempSync(join(tmpdir(), 'keyport-pidns-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A pid free in this namespace, which the holder is then given in its own. */
function freePid(): number {
  for (let pid = 54_321; ; pid++) if (!existsSync(`/proc/${pid}`)) return pid;
}

/** Starts the holder in a new pid namespace under pid `pid`; resolves once it holds the lock. */
async function holdInOtherNamespace(lockPath: string, pid: number): Promise<ChildProcess> {
  const ready = `${lockPath}.ready`;
  const script = `echo ${pid - 1} > /proc/sys/kernel/ns_last_pid && "$0" --import "$1" "$2" "$3" "$4"`;
  const child = spawn(
    'unshare',
    [
      '--pid',
      '--fork',
      '--kill-child',
      '--mount-proc',
      'sh',
      '-c',
      script,
      process.execPath,
      HOOKS,
      HOLDER,
      lockPath,
      ready,
    ],
    { stdio: 'ignore' },
  );
  const deadline = Date.now() + 30_000;
  while (!existsSync(ready) && Date.now() < deadline) await sleep(20);
  expect(readFileSync(ready, 'utf8')).toBe(String(pid));
  return child;
}

// Needs `unshare` (root on Linux), as the tmpfs tests need mount: under CI a machine without it
// fails here rather than skipping.
describe.skipIf(!canUnshare && process.env.CI !== 'true')(
  'an audit lock held from another pid namespace, same hostname',
  () => {
    it('is not broken while its holder runs (its pid, absent here, was taken for a dead owner)', async () => {
      const lockPath = join(dir, 'live.lock');
      const holder = await holdInOtherNamespace(lockPath, freePid());
      try {
        await expect(acquireAuditLock(lockPath, { timeoutMs: 1_500 })).rejects.toMatchObject({
          code: 'Unavailable',
        });
      } finally {
        holder.kill('SIGKILL');
      }
    }, 60_000);

    it('is broken once older than staleMs after its holder died, as one from another host', async () => {
      const lockPath = join(dir, 'dead.lock');
      const holder = await holdInOtherNamespace(lockPath, freePid());
      const exited = new Promise((r) => holder.once('exit', r));
      holder.kill('SIGKILL');
      await exited;
      const lock = await acquireAuditLock(lockPath, { timeoutMs: 10_000, staleMs: 500 });
      await lock.release();
    }, 60_000);
  },
);

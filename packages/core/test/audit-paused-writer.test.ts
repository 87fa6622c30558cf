/**
 * A writer paused under the audit lock — Ctrl-Z, a suspended laptop, a debugger — after reading
 * the log's head and before writing its records. It resumes and writes at the offset it read:
 * whatever another writer appended there meanwhile is overwritten. So its lock is not broken for
 * its age while it still runs (other writers wait, then fail Unavailable), and a writer whose
 * lock was taken from it anyway (removed by hand, broken from another host) writes nothing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { unlink, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { JsonlAuditSink, verifyAuditLog } from '../src/index.js';
import { event, KEY, readLog, tempLog } from './support/audit.js';

const HOOKS = fileURLToPath(new URL('../../cli/test/support/register-ts.mjs', import.meta.url));
const WRITER = fileURLToPath(new URL('./support/audit-paused-writer.mjs', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let child: ChildProcess | undefined;
afterEach(() => {
  child?.kill('SIGKILL');
  child = undefined;
});

/** Starts the writer and resolves once it is stopped under the lock; `exit` resolves its exit code. */
async function pausedWriter(log: string): Promise<{ exit: Promise<number | null> }> {
  const ready = `${log}.paused`;
  const c = spawn(process.execPath, ['--import', HOOKS, WRITER, log, ready], { stdio: 'ignore' });
  child = c;
  const exit = new Promise<number | null>((r) => c.once('exit', (code) => r(code)));
  const deadline = Date.now() + 30_000;
  const stopped = () => {
    try {
      const stat = readFileSync(`/proc/${c.pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2).startsWith('T');
    } catch {
      return false;
    }
  };
  while (!(existsSync(ready) && stopped()) && Date.now() < deadline) await sleep(10);
  expect(stopped()).toBe(true);
  expect(JSON.parse(readFileSync(`${log}.lock`, 'utf8'))).toMatchObject({ pid: c.pid });
  return { exit };
}

describe.skipIf(process.platform !== 'linux')('a writer paused mid-append', () => {
  it('keeps its lock however old: another writer waits and fails Unavailable, and nothing is lost', async () => {
    const log = await tempLog();
    const other = await JsonlAuditSink.open(log, { hmacKey: KEY, lock: { staleMs: 100, timeoutMs: 1_500 } });
    await other.write(event(0));
    await other.write(event(1));
    const { exit } = await pausedWriter(log);
    await sleep(300); // the paused writer's lock is now older than staleMs
    // Broken for its age, this write succeeded, and the paused writer then wrote over it: an
    // acknowledged event lost, and the log refused as tampered by every later open.
    await expect(other.write(event(2))).rejects.toMatchObject({ code: 'Unavailable' });
    child?.kill('SIGCONT');
    expect(await exit).toBe(0);
    await other.write(event(3));
    await other.close();
    const v = await verifyAuditLog(log, KEY);
    expect(v.ok, JSON.stringify(v.problem)).toBe(true);
    const { lines } = await readLog(log);
    expect(lines.filter((l) => l.includes('"provider":"paused"'))).toHaveLength(1);
    for (const i of [0, 1, 3]) expect(lines.filter((l) => l.includes(`#key${i}"`))).toHaveLength(1);
    expect(v.notices.map((n) => n.type)).toEqual(['audit.lost']); // event 2, refused
  }, 60_000);

  it('whose lock was removed meanwhile writes nothing when it resumes: the records appended since stay', async () => {
    const log = await tempLog();
    const first = await JsonlAuditSink.open(log, { hmacKey: KEY });
    await first.write(event(0));
    await first.close();
    const { exit } = await pausedWriter(log);
    // As a user who took the lock for a leftover, or a writer on another host that judged it
    // abandoned, would: the lock goes, and another writer appends where the paused one will.
    await unlink(`${log}.lock`);
    const other = await JsonlAuditSink.open(log, { hmacKey: KEY });
    for (const i of [1, 2, 3]) await other.write(event(i));
    await other.close();
    child?.kill('SIGCONT');
    const code = await exit;
    // It wrote its record over those three, and its anchor named a log that no longer was.
    const v = await verifyAuditLog(log, KEY);
    expect(v.ok, JSON.stringify(v.problem)).toBe(true);
    expect(v.events).toBe(4);
    expect(code).toBe(3); // its append was refused: nothing written
    // The log is still usable: the next open finds it intact.
    const again = await JsonlAuditSink.open(log, { hmacKey: KEY });
    await again.write(event(4));
    await again.close();
    expect(await verifyAuditLog(log, KEY)).toMatchObject({ ok: true, events: 5 });
  }, 60_000);

  it('a lock naming a running process that started after it was made (its pid reused) is broken', async () => {
    const log = await tempLog();
    const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    child = sleeper;
    await sleep(200);
    const owner = JSON.stringify({ pid: sleeper.pid, host: hostname(), nonce: 'earlier' });
    // Made now, by a process that runs: held, however small staleMs is.
    await writeFile(`${log}.lock`, owner);
    await sleep(150);
    await expect(
      JsonlAuditSink.open(log, { hmacKey: KEY, lock: { staleMs: 100, timeoutMs: 300 } }),
    ).rejects.toMatchObject({ code: 'Unavailable' });
    // Made an hour ago: the process with that pid now is not the one that made it.
    const hourAgo = new Date(Date.now() - 3_600_000);
    await utimes(`${log}.lock`, hourAgo, hourAgo);
    const sink = await JsonlAuditSink.open(log, { hmacKey: KEY, lock: { timeoutMs: 2_000 } });
    await sink.close();
  }, 30_000);
});

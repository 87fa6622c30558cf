/**
 * Writers SIGKILLed at random points while appending: whatever a kill leaves (a torn line,
 * records the anchor does not name yet, a lock of a dead process, a temp anchor) the next open
 * repairs or clears, and the log verifies after every round with every repair recorded.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdir, stat, writeFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { JsonlAuditSink, verifyAuditLog } from '../src/index.js';
import { event, KEY, tempLog } from './support/audit.js';

const HOOKS = fileURLToPath(new URL('../../cli/test/support/register-ts.mjs', import.meta.url));
const WRITER = fileURLToPath(new URL('./support/audit-writer.mjs', import.meta.url));
const ROUNDS = 8;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function sizeOf(path: string): Promise<number> {
  return (await stat(path).catch(() => ({ size: 0 }))).size;
}

/** Starts a writer that would append for a long time, and SIGKILLs it once it has written a little. */
async function killMidway(log: string, round: number): Promise<void> {
  const before = await sizeOf(log);
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', HOOKS, WRITER, log, String(round), '1000000'],
    {
      stdio: 'ignore',
    },
  );
  const exited = new Promise((r) => child.once('exit', r));
  const deadline = Date.now() + 20_000;
  while ((await sizeOf(log)) <= before + 2_000 && Date.now() < deadline) await sleep(5);
  await sleep(Math.random() * 50);
  child.kill('SIGKILL');
  await exited;
}

describe('audit writers killed mid-append', () => {
  it(`the log verifies after each of ${ROUNDS} SIGKILLs, once reopened`, async () => {
    const log = await tempLog();
    let events = 0;
    for (let round = 0; round < ROUNDS; round++) {
      await killMidway(log, round);
      const sink = await JsonlAuditSink.open(log, { hmacKey: KEY, lock: { timeoutMs: 5_000 } });
      await sink.write(event(round));
      await sink.close();
      const v = await verifyAuditLog(log, KEY);
      expect(v.ok, JSON.stringify(v.problem)).toBe(true);
      expect(v.events).toBeGreaterThan(events);
      events = v.events;
    }
    const left = (await readdir(dirname(log))).filter((n) => n !== basename(log) && !n.endsWith('.anchor'));
    expect(left).toEqual([]);
  }, 180_000);

  it('leftover temp anchors and moved-aside locks are removed on open', async () => {
    const log = await tempLog();
    await (await JsonlAuditSink.open(log, { hmacKey: KEY })).close();
    await writeFile(`${dirname(log)}/.${basename(log)}.anchor.tmp-123-abc`, 'x');
    await writeFile(`${log}.lock.break.123.abc`, '{}');
    await (await JsonlAuditSink.open(log, { hmacKey: KEY })).close();
    expect((await readdir(dirname(log))).sort()).toEqual([basename(log), `${basename(log)}.anchor`]);
  });
});

/**
 * Several real processes appending to one log at once: the lock and the head re-read under it
 * make one valid chain, with every writer's events present and none reordered; a verifier
 * running meanwhile never sees log and anchor disagree.
 */
import { spawn } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { JsonlAuditSink, verifyAuditLog } from '../src/index.js';
import { event, KEY, readLog, tempLog } from './support/audit.js';

const HOOKS = fileURLToPath(new URL('../../cli/test/support/register-ts.mjs', import.meta.url));
const WRITER = fileURLToPath(new URL('./support/audit-writer.mjs', import.meta.url));
const WRITERS = 4;
const EACH = 150;

function runWriter(log: string, id: number, start: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', HOOKS, WRITER, log, String(id), String(EACH), start], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stderr }));
  });
}

describe('audit log shared by processes', () => {
  /** One round: every check on the chain; returns how often the log switches writer. */
  async function round(): Promise<number> {
    const log = await tempLog();
    const start = `${log}.start`;
    // The parent writes too, while the children run; all start once every child is ready.
    const sink = await JsonlAuditSink.open(log, { hmacKey: KEY });
    const children = Array.from({ length: WRITERS }, (_, id) => runWriter(log, id, start));
    const ready = async () => (await readdir(dirname(log))).filter((n) => n.includes('.start.ready-')).length;
    const deadline = Date.now() + 60_000;
    while ((await ready()) < WRITERS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await writeFile(start, '');
    // Verifying while they append: under the writers' lock, log and anchor always agree.
    let verifying = true;
    const verdicts: boolean[] = [];
    const verifier = (async () => {
      while (verifying) verdicts.push((await verifyAuditLog(log, KEY)).ok);
    })();
    for (let i = 0; i < 50; i++) await sink.write(event(i));
    const results = await Promise.all(children);
    verifying = false;
    await verifier;
    expect(verdicts.length).toBeGreaterThan(0);
    expect(verdicts.every(Boolean)).toBe(true);
    await sink.close();
    for (const r of results) expect(r, r.stderr).toMatchObject({ code: 0 });

    const v = await verifyAuditLog(log, KEY);
    expect(v).toMatchObject({ ok: true, events: WRITERS * EACH + 50, notices: [] });
    const { lines } = await readLog(log);
    for (let id = 0; id < WRITERS; id++) {
      const mine = lines.filter((l) => l.includes(`"provider":"writer-${id}"`));
      expect(mine).toHaveLength(EACH);
    }
    // The writers really interleaved: the log is not four blocks one after another.
    const owners = lines.map((l) => /"provider":"([^"]+)"/.exec(l)?.[1]);
    return owners.filter((o, i) => i > 0 && o !== owners[i - 1]).length;
  }

  it(`${WRITERS} processes appending concurrently build one chain that verifies`, async () => {
    // The writers must really interleave (the log is not five blocks one after another), or the
    // round proved nothing about the lock. On a loaded machine one writer may finish before the
    // others are scheduled: such a round still passes every chain check, and another is run.
    let switches = 0;
    for (let attempt = 0; attempt < 4 && switches <= WRITERS; attempt++) switches = await round();
    expect(switches).toBeGreaterThan(WRITERS);
  }, 240_000);
});

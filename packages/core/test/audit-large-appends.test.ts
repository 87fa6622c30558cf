/**
 * Events that arrive together share one append, and a crash between an append and its anchor
 * leaves its records for the next open to re-anchor — but only as many bytes as one append can
 * be (MAX_UNANCHORED_BYTES): more is taken for tampering. So an append is bounded in bytes, not
 * only in events: five events of 15 MiB written at once made one 75 MiB append, and a crash
 * during it left a log that every later open refused.
 */
import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { JsonlAuditSink, verifyAuditLog } from '../src/index.js';
import { event, KEY, tempLog } from './support/audit.js';

const HOOKS = fileURLToPath(new URL('../../cli/test/support/register-ts.mjs', import.meta.url));
const WRITER = fileURLToPath(new URL('./support/audit-crash-writer.mjs', import.meta.url));
const MIB = 1024 * 1024;

describe('large events written together', () => {
  it('a crash before the anchor leaves a tail the next open re-anchors, however many there were', async () => {
    const log = await tempLog();
    const first = await JsonlAuditSink.open(log, { hmacKey: KEY });
    await first.write(event(0));
    await first.close();
    const anchored = (await stat(log)).size;
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', HOOKS, WRITER, log, '5', String(15 * MIB)], {
        stdio: 'ignore',
      });
      child.once('error', reject);
      child.once('exit', (c, signal) => resolve(signal === 'SIGKILL' ? null : c));
    });
    expect(code).toBeNull(); // killed at its fsync, before the anchor
    expect((await stat(log)).size).toBeGreaterThan(anchored);
    const sink = await JsonlAuditSink.open(log, { hmacKey: KEY });
    expect(sink.recovered).toMatchObject([{ type: 'audit.recovered', tornBytes: 0 }]);
    await sink.write(event(1));
    await sink.close();
    const v = await verifyAuditLog(log, KEY);
    expect(v.ok, JSON.stringify(v.problem)).toBe(true);
    expect(v.events).toBeGreaterThanOrEqual(3); // event 0, what the crashed append wrote, event 1
  }, 120_000);

  it('without a crash, every one is written, in the order written, over as many appends as needed', async () => {
    const log = await tempLog();
    const sink = await JsonlAuditSink.open(log, { hmacKey: KEY });
    const big = 'k'.repeat(15 * MIB);
    await Promise.all([0, 1, 2, 3, 4].map((i) => sink.write({ ...event(i), contextKeys: [big] })));
    await sink.close();
    const seen: string[] = [];
    const v = await verifyAuditLog(log, KEY, { onEvent: (e) => seen.push(e.keyUri as string) });
    expect(v.ok, JSON.stringify(v.problem)).toBe(true);
    expect(seen).toEqual([0, 1, 2, 3, 4].map((i) => `local://k.kp#key${i}`));
  }, 120_000);
});

/**
 * The audit files as someone who can write their directory leaves them, or as a careless user
 * does: a log far larger than a JavaScript string, lines longer than any record, an event too
 * large for one, an anchor that is a FIFO or gone, a key file every user can read.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { chmod, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatAnchor } from '../src/audit-anchor.js';
import { deriveAuditKeys, formatRecord, GENESIS_MAC } from '../src/audit-record.js';
import {
  JsonlAuditSink,
  loadOrCreateAuditKey,
  readAuditAnchor,
  verifyAuditLog,
  verifyAuditText,
} from '../src/index.js';
import { event, KEY, tempLog, writeLog } from './support/audit.js';

/** Settles with the promise, or with 'hung' once `ms` pass. */
const within = <T>(p: Promise<T>, ms: number): Promise<T | 'hung'> =>
  Promise.race([p, new Promise<'hung'>((r) => setTimeout(() => r('hung'), ms).unref())]);

/** The record line an older keyport wrote for an event of any size (MACed, chained). */
function recordLine(seq: number, prev: string, keyUri: string): { line: string; mac: string } {
  return formatRecord(deriveAuditKeys(KEY).record, { seq, prev, event: { ...event(seq), keyUri } });
}

describe('verify over a log larger than a string can hold', () => {
  it('a 600 MB line after the head is after-head, read in bounded memory (was ERR_STRING_TOO_LONG)', async () => {
    const log = await writeLog(3);
    const size = (await stat(log.path)).size;
    // A sparse file: 600 MB of NULs ending in a newline, costing no disk.
    const handle = await open(log.path, 'r+');
    await handle.write('\n', size + 600_000_000);
    await handle.close();
    const before = process.resourceUsage().maxRSS;
    const v = await verifyAuditLog(log.path, KEY);
    expect(v).toMatchObject({
      ok: false,
      records: 4,
      events: 3,
      problem: { kind: 'after-head', line: 4 },
    });
    // Read whole, the text alone took 600 MB (then failed); a line at a time it is a few MB.
    expect((process.resourceUsage().maxRSS - before) / 1024).toBeLessThan(200);
    await rm(dirname(log.path), { recursive: true });
  }, 60_000);
});

describe('a record line longer than any record', () => {
  // 16 MiB: the last line the sink can read back whole to check the anchored head.
  const huge = `local://k.kp#${'x'.repeat(16 * 1024 * 1024)}`;

  it('is refused by the sink when written, and the log stays usable by the next open', async () => {
    const path = await tempLog();
    const sink = await JsonlAuditSink.open(path, { hmacKey: KEY });
    await sink.write(event(0));
    await expect(sink.write({ ...event(1), keyUri: huge })).rejects.toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringContaining('too large'),
    });
    await sink.write(event(2));
    await sink.close();
    // Written, it made every later open fail ("does not end in the record its anchor names").
    const again = await JsonlAuditSink.open(path, { hmacKey: KEY });
    await again.write(event(3));
    await again.close();
    expect(await verifyAuditLog(path, KEY)).toMatchObject({ ok: true, events: 3 });
  });

  it('is malformed for verify, which reads no longer line (one written by an older keyport verified)', async () => {
    const path = await tempLog();
    const first = recordLine(0, GENESIS_MAC, 'local://k.kp#a');
    const big = recordLine(1, first.mac, huge);
    const last = recordLine(2, big.mac, 'local://k.kp#c');
    const text = `${first.line}\n${big.line}\n${last.line}\n`;
    await writeFile(path, text);
    const anchor = formatAnchor(deriveAuditKeys(KEY).anchor, {
      count: 3,
      size: Buffer.byteLength(text),
      head: last.mac,
    });
    await writeFile(`${path}.anchor`, anchor);
    const expected = {
      ok: false,
      records: 3,
      events: 1,
      problem: {
        kind: 'malformed',
        line: 2,
        detail: expect.stringContaining('longer than any audit record'),
      },
    };
    expect(await verifyAuditLog(path, KEY)).toMatchObject(expected);
    expect(verifyAuditText(text, KEY, anchor)).toMatchObject(expected);
  });
});

describe('readAuditAnchor', () => {
  it('refuses a FIFO where the anchor belongs at once (a plain read waited for a writer for ever)', async () => {
    const { path } = await writeLog(1);
    await rm(`${path}.anchor`);
    execFileSync('mkfifo', [`${path}.anchor`]);
    try {
      const outcome = await within(
        readAuditAnchor(path, KEY).then(
          () => 'read',
          (e: unknown) => e,
        ),
        5_000,
      );
      expect(outcome).toMatchObject({ code: 'InvalidArgument' });
    } finally {
      // Lets a reader blocked in open(2) go, so a failing run does not hang the worker.
      try {
        closeSync(openSync(`${path}.anchor`, constants.O_WRONLY | constants.O_NONBLOCK));
      } catch {
        // nobody waiting
      }
    }
  });

  it('a missing anchor is NotFound (was a bare ENOENT), a valid one is read', async () => {
    const log = await writeLog(2);
    const { count, head } = (await verifyAuditLog(log.path, KEY)).head;
    expect(await readAuditAnchor(log.path, KEY)).toEqual({ count, head });
    await rm(`${log.path}.anchor`);
    await expect(readAuditAnchor(log.path, KEY)).rejects.toMatchObject({ code: 'NotFound' });
  });
});

describe('an audit key file', () => {
  it('that every user may read or write is refused, naming its mode and never the key', async () => {
    const path = join(dirname(await tempLog()), 'audit.key');
    await loadOrCreateAuditKey(path);
    const hex = (await readFile(path, 'utf8')).trim();
    for (const mode of [0o644, 0o602]) {
      await chmod(path, mode);
      const error = await loadOrCreateAuditKey(path).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'InvalidArgument', message: expect.stringContaining('chmod 600') });
      expect(String((error as Error).message)).toContain(mode.toString(8));
      expect(JSON.stringify(error)).not.toContain(hex);
      expect(String((error as Error).message)).not.toContain(hex);
    }
    // A group sharing one log needs the key: group access is left alone.
    await chmod(path, 0o640);
    expect((await loadOrCreateAuditKey(path)).created).toBe(false);
  });
});

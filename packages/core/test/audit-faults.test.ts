/**
 * Faults injected into the filesystem calls the sink makes (the one place a test replaces
 * node:fs/promises): an anchor that cannot be replaced after the log line was written.
 */
import { appendFile, readFile } from 'node:fs/promises';
import { describe, expect, it, vi } from 'vitest';
import { JsonlAuditSink, verifyAuditLog } from '../src/index.js';
import { event, KEY, tempLog } from './support/audit.js';

const faults = vi.hoisted(() => ({ renames: 0 }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    rename: (from: string, to: string) => {
      if (faults.renames > 0) {
        faults.renames--;
        return Promise.reject(Object.assign(new Error('EIO: i/o error, rename'), { code: 'EIO' }));
      }
      return real.rename(from, to);
    },
  };
});

describe('an append whose anchor cannot be replaced', () => {
  it('is cut from the log, rejected, and counted in an audit.lost record by the next append', async () => {
    const path = await tempLog();
    const sink = await JsonlAuditSink.open(path, { hmacKey: KEY });
    await sink.write(event(0));
    const before = await readFile(path, 'utf8');
    faults.renames = 1;
    await expect(sink.write(event(1))).rejects.toMatchObject({ code: 'Unavailable', retryable: false });
    expect(await readFile(path, 'utf8')).toBe(before);
    expect(await verifyAuditLog(path, KEY)).toMatchObject({ ok: true, records: 1 });
    await sink.write(event(2));
    await sink.close();
    const v = await verifyAuditLog(path, KEY);
    expect(v).toMatchObject({ ok: true, events: 2, notices: [{ type: 'audit.lost', events: 1, line: 2 }] });
  });
});

describe('a torn line found by an append that then fails', () => {
  const fragment = '{"v":1,"seq":1,"prev":"';

  it('is left in place, and recorded as audit.recovered by the next append (it vanished unrecorded)', async () => {
    const path = await tempLog();
    const sink = await JsonlAuditSink.open(path, { hmacKey: KEY });
    await sink.write(event(0));
    // Another process sharing the log crashed mid-append.
    await appendFile(path, fragment);
    const found = await readFile(path, 'utf8');
    faults.renames = 1;
    await expect(sink.write(event(1))).rejects.toMatchObject({ code: 'Unavailable' });
    expect(await readFile(path, 'utf8')).toBe(found);
    await sink.write(event(2));
    await sink.close();
    const v = await verifyAuditLog(path, KEY);
    expect(v).toMatchObject({
      ok: true,
      events: 2,
      notices: [
        { type: 'audit.recovered', tornBytes: fragment.length, adoptedRecords: 0, line: 2 },
        { type: 'audit.lost', events: 1, line: 3 },
      ],
    });
  });

  it('on open, is left in place for the next open to record', async () => {
    const path = await tempLog();
    const first = await JsonlAuditSink.open(path, { hmacKey: KEY });
    await first.write(event(0));
    await first.close();
    await appendFile(path, fragment);
    const found = await readFile(path, 'utf8');
    faults.renames = 1;
    await expect(JsonlAuditSink.open(path, { hmacKey: KEY })).rejects.toMatchObject({ code: 'Unavailable' });
    expect(await readFile(path, 'utf8')).toBe(found);
    const again = await JsonlAuditSink.open(path, { hmacKey: KEY });
    expect(again.recovered).toMatchObject([{ type: 'audit.recovered', tornBytes: fragment.length }]);
    await again.close();
    expect(await verifyAuditLog(path, KEY)).toMatchObject({ ok: true, notices: [{ line: 2 }] });
  });

  it('longer than the records that replace it: the rest is cut', async () => {
    const path = await tempLog();
    const sink = await JsonlAuditSink.open(path, { hmacKey: KEY });
    await sink.write(event(0));
    await appendFile(path, fragment.padEnd(5_000, 'x'));
    await sink.write(event(1));
    await sink.close();
    expect(await verifyAuditLog(path, KEY)).toMatchObject({
      ok: true,
      records: 3,
      notices: [{ type: 'audit.recovered', tornBytes: 5_000, line: 2 }],
    });
  });
});

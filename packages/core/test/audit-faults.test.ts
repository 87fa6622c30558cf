/**
 * Faults injected into the filesystem calls the sink makes (the one place a test replaces
 * node:fs/promises): an anchor that cannot be replaced after the log line was written.
 */
import { readFile } from 'node:fs/promises';
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

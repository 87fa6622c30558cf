import { createHmac } from 'node:crypto';
import { mkdir, readFile, stat, symlink, truncate, unlink, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  deriveAuditKeys,
  isKeyportError,
  JsonlAuditSink,
  loadOrCreateAuditKey,
  verifyAuditLog,
  verifyAuditText,
} from '../src/index.js';
import { event, joinLines, KEY, readLog, tempLog, writeLog } from './support/audit.js';

describe('JSONL audit log: keyed records and the anchor', () => {
  it('verifies an untouched log: every record MACed, the anchor naming the last one', async () => {
    const log = await writeLog(10);
    const v = await verifyAuditLog(log.path, KEY);
    expect(v).toMatchObject({ ok: true, records: 10, events: 10, notices: [] });
    expect(v.anchor).toEqual(v.head);
    expect(v.head.count).toBe(10);
    for (const line of log.lines) expect(line).toMatch(/,"mac":"[0-9a-f]{64}"\}$/);
    expect(JSON.parse(log.anchor)).toMatchObject({ v: 1, count: 10, size: Buffer.byteLength(log.text) });
  });

  it('updates the anchor with every append, not at checkpoints', async () => {
    const path = await tempLog();
    const sink = await JsonlAuditSink.open(path, { hmacKey: KEY });
    for (let i = 0; i < 3; i++) {
      await sink.write(event(i));
      expect(JSON.parse(await readFile(`${path}.anchor`, 'utf8')).count).toBe(i + 1);
      expect((await verifyAuditLog(path, KEY)).ok).toBe(true);
    }
    await sink.close();
  });

  it('resumes the chain when reopened, and keeps the files private (0600)', async () => {
    const log = await writeLog(3);
    const sink = await JsonlAuditSink.open(log.path, { hmacKey: KEY });
    await sink.write(event(99));
    await sink.close();
    expect(await verifyAuditLog(log.path, KEY)).toMatchObject({ ok: true, records: 4 });
    expect((await stat(log.path)).mode & 0o777).toBe(0o600);
    expect((await stat(`${log.path}.anchor`)).mode & 0o777).toBe(0o600);
  });

  it('a wrong key verifies nothing', async () => {
    const log = await writeLog(2);
    const v = await verifyAuditLog(log.path, new Uint8Array(32).fill(8));
    expect(v).toMatchObject({ ok: false, problem: { kind: 'edited', line: 1 } });
  });

  it('refuses keys shorter than 32 bytes', async () => {
    await expect(JsonlAuditSink.open(await tempLog(), { hmacKey: new Uint8Array(16) })).rejects.toMatchObject(
      {
        code: 'InvalidArgument',
      },
    );
  });

  it('never writes context values, and its digest key is derived from the audit key', async () => {
    const log = await writeLog(2);
    expect(log.text).toContain('"contextKeys":["tenant"]');
    const sink = await JsonlAuditSink.open(log.path, { hmacKey: KEY });
    expect(Buffer.from(sink.contextDigestKey)).toEqual(Buffer.from(deriveAuditKeys(KEY).contextDigest));
    expect(Buffer.from(sink.contextDigestKey)).not.toEqual(Buffer.from(KEY));
    await sink.close();
  });

  it('refuses an event with a field of the wrong type before writing anything', async () => {
    const path = await tempLog();
    const sink = await JsonlAuditSink.open(path, { hmacKey: KEY });
    await expect(sink.write({ ...event(0), durationMs: Number.NaN })).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    await expect(sink.write({ ...event(0), op: 'steal' as never })).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    await sink.write(event(1));
    await sink.close();
    expect(await verifyAuditLog(path, KEY)).toMatchObject({ ok: true, records: 1 });
  });

  it('refuses a symlink or a FIFO where the log belongs', async () => {
    const path = await tempLog();
    await writeFile(join(dirname(path), 'elsewhere'), '');
    await symlink(join(dirname(path), 'elsewhere'), path);
    await expect(JsonlAuditSink.open(path, { hmacKey: KEY })).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    const { execFileSync } = await import('node:child_process');
    const fifo = join(dirname(path), 'fifo.jsonl');
    execFileSync('mkfifo', [fifo]);
    await expect(JsonlAuditSink.open(fifo, { hmacKey: KEY })).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
  });
});

describe('strict parsing', () => {
  const rewrite = (line: string, body: (b: string) => string): string => {
    // Re-MAC an altered body with the real key: only the strict parser can refuse it.
    const inner = line.replace(/,"mac":"[0-9a-f]{64}"\}$/, '}');
    const changed = body(inner);
    const mac = createHmac('sha256', deriveAuditKeys(KEY).record).update(changed).digest('hex');
    return `${changed.slice(0, -1)},"mac":"${mac}"}`;
  };

  it('an upper-case or short MAC is not a record', async () => {
    const log = await writeLog(2);
    const upper = [...log.lines];
    upper[1] = (upper[1] as string).replace(
      /"mac":"([0-9a-f]{64})"/,
      (_, m: string) => `"mac":"${m.toUpperCase()}"`,
    );
    expect(verifyAuditText(joinLines(upper), KEY, log.anchor).problem).toMatchObject({
      kind: 'malformed',
      line: 2,
    });
    const short = [...log.lines];
    short[1] = (short[1] as string).replace(
      /"mac":"([0-9a-f]{64})"/,
      (_, m: string) => `"mac":"${m.slice(2)}"`,
    );
    expect(verifyAuditText(joinLines(short), KEY, log.anchor).ok).toBe(false);
  });

  it.each([
    ['a number spelled 1e0', (b: string) => b.replace('"seq":1,', '"seq":1e0,')],
    ['an extra field', (b: string) => b.replace('"seq":1,', '"seq":1,"x":1,')],
    ['a duplicate field', (b: string) => b.replace('"seq":1,', '"seq":1,"seq":1,')],
    ['whitespace', (b: string) => b.replace('"seq":1,', '"seq": 1,')],
    ['a string seq', (b: string) => b.replace('"seq":1,', '"seq":"1",')],
    ['an escaped spelling', (b: string) => b.replace('"op":"encrypt"', '"op":"\\u0065ncrypt"')],
    ['an unknown operation', (b: string) => b.replace('"op":"encrypt"', '"op":"exfiltrate"')],
    ['a digest in upper case', (b: string) => b.replace('ab'.repeat(32), 'AB'.repeat(32))],
  ])('a correctly MACed record with %s is malformed', async (_name, change) => {
    const log = await writeLog(3);
    const lines = [...log.lines];
    lines[1] = rewrite(lines[1] as string, change);
    expect(lines[1]).not.toBe(log.lines[1]);
    expect(verifyAuditText(joinLines(lines), KEY, log.anchor).problem).toMatchObject({
      kind: 'malformed',
      line: 2,
    });
  });

  it('an anchor with a lenient spelling is invalid', async () => {
    const log = await writeLog(2);
    const spaced = log.anchor.replace('"count":2', '"count": 2');
    expect(verifyAuditText(log.text, KEY, spaced).problem?.kind).toBe('anchor-invalid');
    expect(verifyAuditText(log.text, KEY, log.anchor.toUpperCase()).problem?.kind).toBe('anchor-invalid');
  });
});

describe('crash recovery', () => {
  it('a torn last line is cut on open, recorded as audit.recovered, and noted by verify', async () => {
    const log = await writeLog(4);
    // A crash mid-append: part of a fifth record, no newline, anchor still at four.
    const fragment = '{"v":1,"seq":4,"prev":"';
    await writeFile(log.path, `${log.text}${fragment}`);
    const torn = await verifyAuditLog(log.path, KEY);
    expect(torn).toMatchObject({ ok: false, problem: { kind: 'torn-tail', line: 5 } });

    const sink = await JsonlAuditSink.open(log.path, { hmacKey: KEY });
    expect(sink.recovered).toMatchObject([
      { type: 'audit.recovered', tornBytes: fragment.length, adoptedRecords: 0 },
    ]);
    await sink.write(event(5));
    await sink.close();
    const v = await verifyAuditLog(log.path, KEY);
    expect(v).toMatchObject({ ok: true, records: 6, events: 5 });
    expect(v.notices).toMatchObject([{ type: 'audit.recovered', line: 5, tornBytes: fragment.length }]);
  });

  it('complete records written before a crash could update the anchor are adopted', async () => {
    const full = await writeLog(5);
    const four = await writeLog(4);
    // The log has the fifth record, the anchor still names the fourth.
    await writeFile(four.path, full.text);
    expect((await verifyAuditLog(four.path, KEY)).problem?.kind).toBe('after-head');
    const sink = await JsonlAuditSink.open(four.path, { hmacKey: KEY });
    expect(sink.recovered).toMatchObject([{ tornBytes: 0, adoptedRecords: 1 }]);
    await sink.close();
    expect(await verifyAuditLog(four.path, KEY)).toMatchObject({ ok: true, records: 6, events: 5 });
  });

  it('a log truncated before its anchored head is refused, not repaired', async () => {
    const log = await writeLog(4);
    await truncate(log.path, Buffer.byteLength(log.text) - 10);
    await expect(JsonlAuditSink.open(log.path, { hmacKey: KEY })).rejects.toMatchObject({
      code: 'Integrity',
    });
    expect((await verifyAuditLog(log.path, KEY)).problem?.kind).toBe('truncated');
  });

  it('a log without its anchor is refused', async () => {
    const log = await writeLog(2);
    await writeFile(`${log.path}.anchor`, '');
    await expect(JsonlAuditSink.open(log.path, { hmacKey: KEY })).rejects.toSatisfy((e) =>
      isKeyportError(e, 'Integrity'),
    );
  });
});

describe('failed appends', () => {
  it('reject their own events only; later events are written after an audit.lost record', async () => {
    const path = await tempLog();
    const sink = await JsonlAuditSink.open(path, { hmacKey: KEY, lock: { timeoutMs: 50 } });
    await sink.write(event(0));
    // Another process holds the lock for good: this append cannot happen.
    await writeFile(
      `${path}.lock`,
      JSON.stringify({ pid: process.pid, host: (await import('node:os')).hostname(), nonce: 'x' }),
    );
    await expect(sink.write(event(1))).rejects.toMatchObject({ code: 'Unavailable', retryable: false });
    await unlink(`${path}.lock`);
    await sink.write(event(2));
    await sink.close();
    const v = await verifyAuditLog(path, KEY);
    expect(v).toMatchObject({ ok: true, events: 2 });
    expect(v.notices).toMatchObject([{ type: 'audit.lost', events: 1, line: 2 }]);
  });

  it('after close, writes are refused', async () => {
    const sink = await JsonlAuditSink.open(await tempLog(), { hmacKey: KEY });
    await sink.close();
    await expect(sink.write(event(0))).rejects.toMatchObject({ code: 'Unavailable' });
  });
});

describe('generated audit keys', () => {
  it('are created once with mode 0600; concurrent creators agree on one key', async () => {
    const dir = dirname(await tempLog());
    await mkdir(dir, { recursive: true });
    const path = join(dir, 'audit.key');
    const results = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateAuditKey(path)));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    for (const r of results)
      expect(Buffer.from(r.key)).toEqual(Buffer.from((results[0] as { key: Uint8Array }).key));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await readFile(path, 'utf8')).trim()).toMatch(/^[0-9a-f]{64}$/);
    await writeFile(path, 'short');
    await expect(loadOrCreateAuditKey(path)).rejects.toMatchObject({ code: 'InvalidArgument' });
  });
});

describe('readLog fixture', () => {
  it('round-trips', async () => {
    const log = await writeLog(1);
    expect((await readLog(log.path)).lines).toHaveLength(1);
  });
});

describe('the inter-process lock', () => {
  it('a lock left by a process that died is broken at once', async () => {
    const { spawnSync } = await import('node:child_process');
    const dead = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid as number;
    const path = await tempLog();
    await writeFile(`${path}.lock`, JSON.stringify({ pid: dead, host: hostname(), nonce: 'gone' }));
    const sink = await JsonlAuditSink.open(path, { hmacKey: KEY, lock: { timeoutMs: 1000 } });
    await sink.write(event(0));
    await sink.close();
    expect((await verifyAuditLog(path, KEY)).ok).toBe(true);
    await expect(stat(`${path}.lock`)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('an empty lock (owner died between create and write) is broken once it is 2 s old', async () => {
    const path = await tempLog();
    await writeFile(`${path}.lock`, '');
    const old = new Date(Date.now() - 5_000);
    await utimes(`${path}.lock`, old, old);
    const sink = await JsonlAuditSink.open(path, { hmacKey: KEY, lock: { timeoutMs: 1000 } });
    await sink.close();
  });

  it('a live holder is waited for, then the wait fails with Unavailable', async () => {
    const path = await tempLog();
    await writeFile(`${path}.lock`, JSON.stringify({ pid: process.pid, host: hostname(), nonce: 'me' }));
    await expect(JsonlAuditSink.open(path, { hmacKey: KEY, lock: { timeoutMs: 100 } })).rejects.toMatchObject(
      {
        code: 'Unavailable',
      },
    );
  });
});

import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type AuditEvent, JsonlAuditSink, verifyAuditLog, verifyAuditText } from '../src/index.js';

const key = new Uint8Array(32).fill(7);

function event(i: number): AuditEvent {
  return {
    ts: new Date(1_700_000_000_000 + i).toISOString(),
    op: 'encrypt',
    provider: 'local',
    keyUri: `local://k.kp#key${i}`,
    keyVersion: '1',
    outcome: 'success',
    errorCode: undefined,
    durationMs: 1,
    attempts: 1,
    requestId: undefined,
    contextKeys: ['tenant'],
    contextDigest: 'ab'.repeat(32),
  };
}

async function writeLog(n: number, every = 4): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'kp-audit-')), 'audit.jsonl');
  const sink = await JsonlAuditSink.open(path, { hmacKey: key, checkpointEvery: every });
  for (let i = 0; i < n; i++) await sink.write(event(i));
  await sink.close();
  return path;
}

describe('JSONL audit chain', () => {
  it('verifies an untouched log, with checkpoints', async () => {
    const path = await writeLog(10);
    const v = await verifyAuditLog(path, key);
    expect(v).toMatchObject({ ok: true, uncheckpointed: 0 });
    expect(v.checkpoints).toBe(3);
  });

  it('resumes the chain when reopened', async () => {
    const path = await writeLog(3);
    const sink = await JsonlAuditSink.open(path, { hmacKey: key, checkpointEvery: 4 });
    await sink.write(event(99));
    await sink.close();
    expect((await verifyAuditLog(path, key)).ok).toBe(true);
  });

  it('catches an edited record', async () => {
    const lines = (await readFile(await writeLog(10), 'utf8')).trimEnd().split('\n');
    lines[2] = (lines[2] as string).replace('key2', 'keyX');
    expect(verifyAuditText(lines.join('\n'), key).problem).toMatchObject({ kind: 'edited', line: 3 });
  });

  it('catches a dropped record', async () => {
    const lines = (await readFile(await writeLog(10), 'utf8')).trimEnd().split('\n');
    lines.splice(5, 1);
    expect(verifyAuditText(lines.join('\n'), key).problem).toMatchObject({ kind: 'dropped', line: 6 });
  });

  it('catches reordered records', async () => {
    const lines = (await readFile(await writeLog(10), 'utf8')).trimEnd().split('\n');
    [lines[3], lines[6]] = [lines[6] as string, lines[3] as string];
    expect(verifyAuditText(lines.join('\n'), key).problem).toMatchObject({ kind: 'reordered', line: 4 });
    const swapped = (await readFile(await writeLog(10), 'utf8')).trimEnd().split('\n');
    [swapped[6], swapped[3]] = [swapped[3] as string, swapped[6] as string];
    const moved = [...swapped.slice(0, 3), swapped[4], swapped[3], ...swapped.slice(5)] as string[];
    expect(verifyAuditText(moved.join('\n'), key).ok).toBe(false);
  });

  it('catches a rewritten chain through the keyed checkpoints', async () => {
    const path = await writeLog(4, 4);
    const lines = (await readFile(path, 'utf8')).trimEnd().split('\n');
    // An attacker edits record 0 and recomputes every hash, but cannot make the HMAC.
    const { createHash } = await import('node:crypto');
    const h = (s: string) => createHash('sha256').update(s).digest('hex');
    const records = lines.map((l) => JSON.parse(l) as { prev: string; event?: { keyUri: string } });
    (records[0] as { event: { keyUri: string } }).event.keyUri = 'local://k.kp#forged';
    let prev = '0'.repeat(64);
    const rewritten = records.map((r) => {
      r.prev = prev;
      const line = JSON.stringify(r);
      prev = h(line);
      return line;
    });
    await writeFile(path, `${rewritten.join('\n')}\n`);
    expect((await verifyAuditLog(path, key)).problem?.kind).toBe('bad-checkpoint');
    expect((await verifyAuditLog(path, new Uint8Array(32))).ok).toBe(false);
  });

  it('never writes context values', async () => {
    const text = await readFile(await writeLog(2), 'utf8');
    expect(text).toContain('"contextKeys":["tenant"]');
  });
});

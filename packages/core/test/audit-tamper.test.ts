/**
 * The tamper matrix: each kind of change an attacker can make to a log (and its anchor), each
 * its own test, each detected with its own verdict. The attacker here has write access to the
 * files but not the audit key, except where a test says otherwise.
 */
import { generateKeyPairSync, sign as signWith, verify as verifyWith } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import {
  type AuditEvent,
  type AuditHead,
  auditAnchorStatement,
  JsonlAuditSink,
  type KeyLike,
  type KeyOperations,
  parseSignedAuditAnchor,
  signAuditAnchor,
  verifyAuditLog,
  verifyAuditText,
  verifySignedAuditAnchor,
} from '../src/index.js';
import { event, joinLines, KEY, readLog, tempLog, writeLog } from './support/audit.js';

const verdict = (text: string, anchor: string | undefined, signed?: AuditHead) =>
  verifyAuditText(text, KEY, anchor, signed);

/** A record the attacker makes up: right shape and chain position, a MAC they had to guess. */
function fabricated(seq: number, prev: string): string {
  const body = JSON.stringify({ v: 1, seq, prev, event: { ...event(seq), keyUri: 'local://k.kp#forged' } });
  return `${body.slice(0, -1)},"mac":"${'1f'.repeat(32)}"}`;
}

const macOf = (line: string): string =>
  (/"mac":"([0-9a-f]{64})"\}$/.exec(line) as RegExpExecArray)[1] as string;

describe('audit tamper matrix', () => {
  it('edit: a changed field in a record', async () => {
    const log = await writeLog(8);
    const lines = [...log.lines];
    lines[3] = (lines[3] as string).replace('"outcome":"success"', '"outcome":"failure"');
    expect(verdict(joinLines(lines), log.anchor).problem).toMatchObject({ kind: 'edited', line: 4 });
  });

  it('delete: a record removed from the middle', async () => {
    const log = await writeLog(8);
    const lines = [...log.lines];
    lines.splice(5, 1);
    expect(verdict(joinLines(lines), log.anchor).problem).toMatchObject({ kind: 'dropped', line: 6 });
  });

  it('swap: two records exchanged', async () => {
    const log = await writeLog(8);
    const lines = [...log.lines];
    [lines[2], lines[6]] = [lines[6] as string, lines[2] as string];
    expect(verdict(joinLines(lines), log.anchor).problem).toMatchObject({ kind: 'reordered', line: 3 });
    // Adjacent records too.
    const adjacent = [...log.lines];
    [adjacent[4], adjacent[5]] = [adjacent[5] as string, adjacent[4] as string];
    expect(verdict(joinLines(adjacent), log.anchor).problem).toMatchObject({ kind: 'reordered', line: 5 });
  });

  it('truncate the tail: the last records removed, whole lines', async () => {
    const log = await writeLog(8);
    for (const keep of [0, 1, 5, 7]) {
      const v = verdict(joinLines(log.lines.slice(0, keep)), log.anchor);
      expect(v.problem?.kind, `keeping ${keep}`).toBe('truncated');
    }
    // Cut mid-line as well.
    expect(verdict(log.text.slice(0, -30), log.anchor).problem?.kind).toBe('truncated');
    // And the log file emptied.
    expect(verdict('', log.anchor).problem?.kind).toBe('truncated');
  });

  it('roll back: log and anchor both replaced by an older copy — caught by the signed head', async () => {
    const log = await writeLog(4);
    const older = { text: log.text, anchor: log.anchor };
    const sink = await JsonlAuditSink.open(log.path, { hmacKey: KEY });
    for (let i = 4; i < 9; i++) await sink.write(event(i));
    await sink.close();
    const now = await readLog(log.path);
    const signedHead = { count: now.lines.length, head: macOf(now.lines.at(-1) as string) };
    // The log alone rolled back: shorter than its anchor.
    expect(verdict(older.text, now.anchor).problem?.kind).toBe('truncated');
    // Both rolled back: consistent with each other, so only the signed head shows it.
    expect(verdict(older.text, older.anchor).ok).toBe(true);
    expect(verdict(older.text, older.anchor, signedHead).problem).toMatchObject({ kind: 'rolled-back' });
    expect(verdict(now.text, now.anchor, signedHead).ok).toBe(true);
  });

  it('duplicate: a record repeated', async () => {
    const log = await writeLog(8);
    const lines = [...log.lines];
    lines.splice(4, 0, lines[3] as string);
    expect(verdict(joinLines(lines), log.anchor).problem).toMatchObject({ kind: 'duplicated', line: 5 });
    const last = [...log.lines, log.lines.at(-1) as string];
    expect(verdict(joinLines(last), log.anchor).ok).toBe(false);
  });

  it('forge: a made-up record inserted into the chain', async () => {
    const log = await writeLog(8);
    const lines = [...log.lines];
    lines.splice(4, 0, fabricated(4, macOf(lines[3] as string)));
    expect(verdict(joinLines(lines), log.anchor).problem).toMatchObject({ kind: 'forged', line: 5 });
  });

  it('forge: an authentic record from another log under the same key', async () => {
    const log = await writeLog(8);
    const otherPath = await tempLog();
    const other = await JsonlAuditSink.open(otherPath, { hmacKey: KEY });
    for (let i = 0; i < 8; i++) await other.write(event(100 + i));
    await other.close();
    const lines = [...log.lines];
    // Its MAC holds and its seq fits, but it chains to another log's record 2.
    lines[3] = (await readLog(otherPath)).lines[3] as string;
    expect(verdict(joinLines(lines), log.anchor).problem).toMatchObject({ kind: 'forged', line: 4 });
  });

  it('append after the head: a made-up record after the last one', async () => {
    const log = await writeLog(8);
    const lines = [...log.lines, fabricated(8, macOf(log.lines.at(-1) as string))];
    expect(verdict(joinLines(lines), log.anchor).problem).toMatchObject({ kind: 'after-head', line: 9 });
  });

  it('append after the head: a correctly MACed record by a key holder who left the anchor alone', async () => {
    const full = await writeLog(9);
    const log = await writeLog(8);
    expect(verdict(full.text, log.anchor).problem).toMatchObject({ kind: 'after-head', line: 9 });
  });

  it('anchor: edited, removed or rolled forward without the key', async () => {
    const log = await writeLog(4);
    expect(verdict(log.text, undefined).problem?.kind).toBe('anchor-missing');
    expect(verdict(log.text, log.anchor.replace('"count":4', '"count":3')).problem?.kind).toBe(
      'anchor-invalid',
    );
    expect(verdict(log.text, log.anchor.replace(/"mac":"[0-9a-f]/, '"mac":"z')).problem?.kind).toBe(
      'anchor-invalid',
    );
    // An anchor file holding something else entirely.
    await writeFile(`${log.path}.anchor`, 'not an anchor');
    expect((await verifyAuditLog(log.path, KEY)).problem?.kind).toBe('anchor-invalid');
  });

  it('rewrite with the key: consistent log and anchor, caught only by a signed head', async () => {
    const log = await writeLog(6);
    const signedHead = { count: 6, head: macOf(log.lines[5] as string) };
    // An attacker holding the key rebuilds the whole chain with record 2 changed.
    const path = await tempLog();
    const sink = await JsonlAuditSink.open(path, { hmacKey: KEY });
    for (let i = 0; i < 6; i++) await sink.write(i === 2 ? { ...event(i), outcome: 'failure' } : event(i));
    await sink.close();
    const forged = await readLog(path);
    expect(verdict(forged.text, forged.anchor).ok).toBe(true); // the documented limit
    expect(verdict(forged.text, forged.anchor, signedHead).problem?.kind).toBe('rewritten');
  });
});

describe('signed anchors', () => {
  // A signing key behind the client interface; the CLI tests use the local provider's ECDSA key.
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const uri = 'local://k.kp#anchor';
  const keys: Pick<KeyOperations, 'sign' | 'verify'> = {
    sign: async (_key: KeyLike, message: Uint8Array) => ({
      signature: new Uint8Array(signWith('sha256', message, privateKey)),
      algorithm: 'ECDSA_SHA_256' as const,
      keyVersion: '1',
    }),
    verify: async (_key: KeyLike, message: Uint8Array, signature: Uint8Array) =>
      verifyWith('sha256', message, publicKey, signature),
  };

  it('sign count and head; a changed count, head or signature fails', async () => {
    const head = { count: 5, head: 'ab'.repeat(32) };
    const signed = await signAuditAnchor(keys, uri, head);
    const text = JSON.stringify(signed);
    expect(await verifySignedAuditAnchor(keys, parseSignedAuditAnchor(text), uri)).toEqual(head);
    await expect(verifySignedAuditAnchor(keys, { ...signed, count: 6 }, uri)).rejects.toMatchObject({
      code: 'Integrity',
    });
    await expect(
      verifySignedAuditAnchor(keys, { ...signed, head: 'cd'.repeat(32) }, uri),
    ).rejects.toMatchObject({ code: 'Integrity' });
    await expect(verifySignedAuditAnchor(keys, signed, 'local://k.kp#other')).rejects.toMatchObject({
      code: 'Integrity',
    });
    expect(new TextDecoder().decode(auditAnchorStatement(head))).toBe(
      `keyport audit anchor v1\ncount 5\nhead ${'ab'.repeat(32)}\n`,
    );
  });

  it('signed anchor documents are parsed strictly', async () => {
    const signed = await signAuditAnchor(keys, uri, { count: 1, head: 'ab'.repeat(32) });
    for (const bad of [
      { ...signed, extra: 1 },
      { ...signed, count: '1' },
      { ...signed, count: 1.5 },
      { ...signed, head: 'AB'.repeat(32) },
      { ...signed, signature: 'not base64!' },
      { ...signed, algorithm: 'MD5' },
    ]) {
      expect(() => parseSignedAuditAnchor(JSON.stringify(bad))).toThrow(
        expect.objectContaining({ code: 'InvalidArgument' }),
      );
    }
    expect(() => parseSignedAuditAnchor('{"__proto__":{}}')).toThrow(
      expect.objectContaining({ code: 'InvalidArgument' }),
    );
  });
});

describe('verifyAuditLog onEvent: the events of the pass that verifies them', () => {
  it('hands over every event record in order, once, as written', async () => {
    const log = await writeLog(6);
    const seen: AuditEvent[] = [];
    const v = await verifyAuditLog(log.path, KEY, { onEvent: (e) => seen.push(e) });
    expect(v.ok).toBe(true);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5].map(event));
  });

  it('stops at the record the chain refuses (the verdict says the rest is not to be trusted)', async () => {
    const log = await writeLog(8);
    const lines = [...log.lines];
    lines[3] = (lines[3] as string).replace('"outcome":"success"', '"outcome":"failure"');
    await writeFile(log.path, joinLines(lines));
    const seen: AuditEvent[] = [];
    const v = await verifyAuditLog(log.path, KEY, { onEvent: (e) => seen.push(e) });
    expect(v.ok).toBe(false);
    expect(v.problem).toMatchObject({ kind: 'edited', line: 4 });
    expect(seen.map((e) => e.keyUri)).toEqual([
      'local://k.kp#key0',
      'local://k.kp#key1',
      'local://k.kp#key2',
    ]);
  });
});

describe('verifyAuditLog onEvent: checked, and a throw ends the verification', () => {
  it('a non-function is InvalidArgument before the log is read; a throwing one rejects with its error', async () => {
    const log = await writeLog(3);
    for (const bad of ['x', 1, {}]) {
      await expect(verifyAuditLog(log.path, KEY, { onEvent: bad as never })).rejects.toMatchObject({
        code: 'InvalidArgument',
        message: expect.stringMatching(/options\.onEvent: expected a function/),
      });
    }
    const stop = new Error('enough');
    await expect(
      verifyAuditLog(log.path, KEY, {
        onEvent: () => {
          throw stop;
        },
      }),
    ).rejects.toBe(stop);
    // The log is left as it was, and verifies.
    expect((await verifyAuditLog(log.path, KEY)).ok).toBe(true);
  });
});

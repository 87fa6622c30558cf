/**
 * Audit: one event per operation, sent to every registered sink. Events carry the context's
 * keys and a digest, never its values, and never key material or plaintext.
 *
 * The JSONL sink chains records: each line holds `prev`, the SHA-256 of the previous line's
 * bytes, and a sequence number; every `checkpointEvery` records (and on close) it writes a
 * checkpoint whose `mac` is HMAC-SHA256(key, prev). Hashes catch edits, drops and reordering;
 * the keyed checkpoints stop someone from rewriting the whole chain, since recomputing the
 * hashes does not give them the HMAC key. Records after the last checkpoint can only be
 * vouched for by the hash chain, and `verifyAuditLog` reports how many there are.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { type FileHandle, open, readFile } from 'node:fs/promises';
import type { Operation } from './capabilities.js';
import type { ErrorCode } from './errors.js';

export interface AuditEvent {
  readonly ts: string;
  readonly op: Operation;
  readonly provider: string;
  readonly keyUri: string | undefined;
  readonly keyVersion: string | undefined;
  readonly outcome: 'success' | 'failure';
  readonly errorCode: ErrorCode | undefined;
  readonly durationMs: number;
  readonly attempts: number;
  readonly requestId: string | undefined;
  readonly contextKeys: readonly string[];
  readonly contextDigest: string | undefined;
}

export interface AuditSink {
  write(event: AuditEvent): void | Promise<void>;
  close?(): Promise<void>;
}

/** Keeps events in memory; handy for tests and for printing a session's trail. */
export class MemoryAuditSink implements AuditSink {
  readonly events: AuditEvent[] = [];
  write(event: AuditEvent): void {
    this.events.push(event);
  }
}

const GENESIS = '0'.repeat(64);

interface ChainRecord {
  seq: number;
  prev: string;
  event?: AuditEvent;
  checkpoint?: { mac: string };
}

const sha256 = (line: string): string => createHash('sha256').update(line, 'utf8').digest('hex');
const checkpointMac = (key: Uint8Array, prev: string): string =>
  createHmac('sha256', key).update(prev).digest('hex');

export interface JsonlAuditSinkOptions {
  /** Secret for checkpoints; keep it away from whoever can write the log. At least 32 bytes. */
  readonly hmacKey: Uint8Array;
  readonly checkpointEvery?: number;
}

/** Appends hash-chained records to a JSONL file, resuming the chain of an existing file. */
export class JsonlAuditSink implements AuditSink {
  private handle: FileHandle | undefined;
  private seq = 0;
  private prev = GENESIS;
  private sinceCheckpoint = 0;
  private queue: Promise<void> = Promise.resolve();
  private readonly every: number;

  private constructor(
    private readonly path: string,
    private readonly key: Uint8Array,
    every: number,
  ) {
    this.every = every;
  }

  static async open(path: string, options: JsonlAuditSinkOptions): Promise<JsonlAuditSink> {
    if (options.hmacKey.length < 32) throw new RangeError('audit hmacKey must be at least 32 bytes');
    const sink = new JsonlAuditSink(path, options.hmacKey, options.checkpointEvery ?? 100);
    let existing = '';
    try {
      existing = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const lines = existing.split('\n').filter((l) => l !== '');
    const last = lines.at(-1);
    if (last !== undefined) {
      const record = JSON.parse(last) as ChainRecord;
      sink.seq = record.seq + 1;
      sink.prev = sha256(last);
    }
    sink.handle = await open(path, 'a', 0o600);
    return sink;
  }

  write(event: AuditEvent): Promise<void> {
    this.queue = this.queue.then(async () => {
      await this.append({ seq: this.seq, prev: this.prev, event });
      if (++this.sinceCheckpoint >= this.every) await this.checkpoint();
    });
    return this.queue;
  }

  private async append(record: ChainRecord): Promise<void> {
    const line = JSON.stringify(record);
    if (this.handle === undefined) throw new Error(`audit sink ${this.path} is closed`);
    await this.handle.write(`${line}\n`);
    this.seq++;
    this.prev = sha256(line);
  }

  private async checkpoint(): Promise<void> {
    await this.append({
      seq: this.seq,
      prev: this.prev,
      checkpoint: { mac: checkpointMac(this.key, this.prev) },
    });
    this.sinceCheckpoint = 0;
    await this.handle?.sync();
  }

  async close(): Promise<void> {
    this.queue = this.queue.then(async () => {
      if (this.sinceCheckpoint > 0) await this.checkpoint();
      await this.handle?.close();
      this.handle = undefined;
    });
    return this.queue;
  }
}

export type AuditProblem = 'malformed' | 'edited' | 'dropped' | 'reordered' | 'bad-checkpoint';

export interface AuditVerification {
  readonly ok: boolean;
  readonly records: number;
  readonly checkpoints: number;
  /** Event records after the last checkpoint: protected by the hash chain only. */
  readonly uncheckpointed: number;
  /** The first problem found, with its 1-based line number. */
  readonly problem?: { readonly kind: AuditProblem; readonly line: number; readonly detail: string };
}

/** Checks a JSONL audit log written by JsonlAuditSink and reports the first problem. */
export async function verifyAuditLog(path: string, hmacKey: Uint8Array): Promise<AuditVerification> {
  const text = await readFile(path, 'utf8');
  return verifyAuditText(text, hmacKey);
}

export function verifyAuditText(text: string, hmacKey: Uint8Array): AuditVerification {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  let prev = GENESIS;
  let checkpoints = 0;
  let uncheckpointed = 0;
  const fail = (kind: AuditProblem, line: number, detail: string): AuditVerification => ({
    ok: false,
    records: lines.length,
    checkpoints,
    uncheckpointed,
    problem: { kind, line, detail },
  });
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    let record: ChainRecord;
    try {
      record = JSON.parse(line) as ChainRecord;
    } catch {
      return fail('malformed', i + 1, 'not a JSON record');
    }
    if (typeof record.seq !== 'number' || typeof record.prev !== 'string') {
      return fail('malformed', i + 1, 'missing seq or prev');
    }
    if (record.seq !== i) {
      // A missing record that turns up later was moved; one that never does was dropped.
      const later = lines.slice(i + 1).some((l) => l.includes(`"seq":${i},`));
      return record.seq > i && !later
        ? fail('dropped', i + 1, `expected record ${i}, found ${record.seq}`)
        : fail('reordered', i + 1, `record ${record.seq} is out of order (expected ${i})`);
    }
    if (record.prev !== prev) {
      // The previous line no longer hashes to what this record saw: it was changed.
      return fail('edited', i, 'record does not match the hash its successor recorded');
    }
    if (record.checkpoint !== undefined) {
      const expected = Buffer.from(checkpointMac(hmacKey, record.prev), 'hex');
      const got = Buffer.from(String(record.checkpoint.mac), 'hex');
      if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
        return fail('bad-checkpoint', i + 1, 'checkpoint MAC does not verify');
      }
      checkpoints++;
      uncheckpointed = 0;
    } else {
      uncheckpointed++;
    }
    prev = sha256(line);
  }
  return { ok: true, records: lines.length, checkpoints, uncheckpointed };
}

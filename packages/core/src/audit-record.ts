/**
 * The JSONL audit record format (v1), shared by the sink that writes it and the verifier.
 *
 * Every line is one record, MACed on its own and chained to the one before:
 *
 *     {"v":1,"seq":N,"prev":"<mac of record N-1>","event":{...},"mac":"<64 lowercase hex>"}
 *     {"v":1,"seq":N,"prev":"...","notice":{"type":"audit.recovered",...},"mac":"..."}
 *
 * `mac` is HMAC-SHA256 under a key derived from the user's audit key, over the line's bytes
 * without the `,"mac":"…"` member (the "body"). Record 0 chains to 64 zeros. Parsing is strict:
 * the body must be exactly the canonical serialisation of the fields it holds — fixed field set
 * and order, no extra whitespace, no alternative number or string spellings — so there is one
 * accepted line per record and nothing for a lenient reader to disagree about.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { AuditEvent } from './audit.js';
import { OPERATIONS, type Operation } from './capabilities.js';
import { ERROR_CODES, type ErrorCode, KeyportError } from './errors.js';
import { secretKey } from './secret-key.js';

export const AUDIT_FORMAT_VERSION = 1;
export const GENESIS_MAC = '0'.repeat(64);
/** The smallest audit key accepted: a full SHA-256 block of entropy. */
export const MIN_AUDIT_KEY_BYTES = 32;

/**
 * The longest record line, its newline included. The sink reads the last line back whole to
 * check the anchored head, and verify reads no longer line: an event whose record would be
 * longer is refused when it is written (it used to be written, and then no later open of the
 * log got past it: "does not end in the record its anchor names").
 */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;
/** Unanchored bytes a crash can leave are at most one append; more is not a crash. */
export const MAX_UNANCHORED_BYTES = 64 * 1024 * 1024;

const HEX64 = /^[0-9a-f]{64}$/;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const MAC_SUFFIX = /,"mac":"([0-9a-f]{64})"\}$/;
const MAC_SUFFIX_LENGTH = ',"mac":"'.length + 64 + '"}'.length;

/** Sub-keys derived from the one audit key, so a key never serves two purposes. */
export interface AuditKeys {
  /** MACs each record. */
  readonly record: Uint8Array;
  /** MACs the anchor file. */
  readonly anchor: Uint8Array;
  /** Keys the context digests in events (`contextDigest`). */
  readonly contextDigest: Uint8Array;
}

export function deriveAuditKeys(key: Uint8Array): AuditKeys {
  if (!(key instanceof Uint8Array) || key.length < MIN_AUDIT_KEY_BYTES) {
    throw new KeyportError(
      'InvalidArgument',
      `the audit key must be a Uint8Array of at least ${MIN_AUDIT_KEY_BYTES} bytes`,
    );
  }
  const derive = (info: string): Uint8Array =>
    new Uint8Array(hkdfSync('sha256', key, new Uint8Array(0), `keyport audit v1 ${info}`, 32));
  return { record: derive('record'), anchor: derive('anchor'), contextDigest: derive('context digest') };
}

export function hmacHex(key: Uint8Array, body: string): string {
  return createHmac('sha256', secretKey(key)).update(body, 'utf8').digest('hex');
}

/** Constant-time comparison of two lowercase-hex MACs of equal, fixed length. */
export function macEquals(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1'));
}

/** Why the audit log was touched outside normal appends; written as its own chained record. */
export type AuditNotice =
  | {
      /** A crash left bytes after the anchored head: a torn line was cut, complete records kept. */
      readonly type: 'audit.recovered';
      readonly ts: string;
      readonly tornBytes: number;
      readonly adoptedRecords: number;
    }
  | {
      /** Events this process could not write (the operations failed or were warned about). */
      readonly type: 'audit.lost';
      readonly ts: string;
      readonly events: number;
    };

export type AuditRecordBody =
  | { readonly seq: number; readonly prev: string; readonly event: AuditEvent }
  | { readonly seq: number; readonly prev: string; readonly notice: AuditNotice };

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const orNull = <T>(v: T | undefined): T | null => (v === undefined ? null : v);

function canonicalEvent(e: AuditEvent): Json {
  return {
    ts: e.ts,
    op: e.op,
    provider: e.provider,
    keyUri: orNull(e.keyUri),
    keyVersion: orNull(e.keyVersion),
    outcome: e.outcome,
    errorCode: orNull(e.errorCode),
    durationMs: e.durationMs,
    attempts: e.attempts,
    requestId: orNull(e.requestId),
    contextKeys: [...e.contextKeys],
    contextDigest: orNull(e.contextDigest),
  };
}

function canonicalNotice(n: AuditNotice): Json {
  return n.type === 'audit.recovered'
    ? { type: n.type, ts: n.ts, tornBytes: n.tornBytes, adoptedRecords: n.adoptedRecords }
    : { type: n.type, ts: n.ts, events: n.events };
}

/** The body a record's MAC covers: its canonical JSON without the `mac` member. */
export function recordBody(r: AuditRecordBody): string {
  const base = { v: AUDIT_FORMAT_VERSION, seq: r.seq, prev: r.prev };
  return JSON.stringify(
    'event' in r
      ? { ...base, event: canonicalEvent(r.event) }
      : { ...base, notice: canonicalNotice(r.notice) },
  );
}

/**
 * One complete line (without the newline) and its MAC. `checked`: the caller already made sure
 * the record parses back (the sink checks each event when it is handed over).
 */
export function formatRecord(
  key: Uint8Array,
  r: AuditRecordBody,
  checked = false,
): { line: string; mac: string } {
  const body = recordBody(r);
  // Writing only what the reader accepts keeps the two from ever disagreeing.
  if (!checked && parseBody(body) === undefined) {
    throw new KeyportError('InvalidArgument', 'the audit event has a field of the wrong type or range');
  }
  const mac = hmacHex(key, body);
  return { line: `${body.slice(0, -1)},"mac":"${mac}"}`, mac };
}

/** A line split into its MACed body and MAC, or undefined when it has not the record shape. */
export function splitRecordLine(line: string): { body: string; mac: string } | undefined {
  const m = MAC_SUFFIX.exec(line);
  if (m === null || !line.startsWith('{"v":')) return undefined;
  return { body: `${line.slice(0, -MAC_SUFFIX_LENGTH)}}`, mac: m[1] as string };
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isStringOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';
const OPERATION_SET: ReadonlySet<string> = new Set(OPERATIONS);
const ERROR_CODE_SET: ReadonlySet<string> = new Set(ERROR_CODES);

function parseEvent(v: unknown): AuditEvent | undefined {
  if (!isObject(v)) return undefined;
  const { ts, op, provider, keyUri, keyVersion, outcome, errorCode } = v;
  const { durationMs, attempts, requestId, contextKeys, contextDigest } = v;
  if (typeof ts !== 'string' || !ISO_MS.test(ts) || Number.isNaN(Date.parse(ts))) return undefined;
  if (typeof op !== 'string' || !OPERATION_SET.has(op)) return undefined;
  if (typeof provider !== 'string' || !isStringOrNull(keyUri) || !isStringOrNull(keyVersion))
    return undefined;
  if (outcome !== 'success' && outcome !== 'failure') return undefined;
  if (errorCode !== null && (typeof errorCode !== 'string' || !ERROR_CODE_SET.has(errorCode)))
    return undefined;
  if (typeof durationMs !== 'number' || !Number.isFinite(durationMs) || durationMs < 0) return undefined;
  if (!isCount(attempts) || !isStringOrNull(requestId)) return undefined;
  if (!Array.isArray(contextKeys) || !contextKeys.every((k) => typeof k === 'string')) return undefined;
  if (contextDigest !== null && (typeof contextDigest !== 'string' || !HEX64.test(contextDigest))) {
    return undefined;
  }
  return {
    ts,
    op: op as Operation,
    provider,
    keyUri: keyUri ?? undefined,
    keyVersion: keyVersion ?? undefined,
    outcome,
    errorCode: (errorCode ?? undefined) as ErrorCode | undefined,
    durationMs,
    attempts,
    requestId: requestId ?? undefined,
    contextKeys: contextKeys as string[],
    contextDigest: contextDigest ?? undefined,
  };
}

function parseNotice(v: unknown): AuditNotice | undefined {
  if (!isObject(v) || typeof v.ts !== 'string' || !ISO_MS.test(v.ts)) return undefined;
  if (v.type === 'audit.recovered' && isCount(v.tornBytes) && isCount(v.adoptedRecords)) {
    return { type: v.type, ts: v.ts, tornBytes: v.tornBytes, adoptedRecords: v.adoptedRecords };
  }
  if (v.type === 'audit.lost' && isCount(v.events)) return { type: v.type, ts: v.ts, events: v.events };
  return undefined;
}

/** True when an event has every field of the right type and range to be written as a record. */
export function isWritableEvent(e: AuditEvent): boolean {
  return typeof e === 'object' && e !== null && parseEvent(canonicalEvent(e)) !== undefined;
}

/** True when the event's record line fits MAX_LINE_BYTES, whatever its seq. */
export function eventFits(e: AuditEvent): boolean {
  // Cheap bound first (events are a few hundred bytes): JSON spends at most 6 bytes on a UTF-16
  // unit (\uXXXX), 3 more on a string's quotes and comma, and under 1 KiB on everything else.
  let units = 0;
  for (const s of [e.provider, e.keyUri, e.keyVersion, e.requestId, ...e.contextKeys]) {
    units += (s?.length ?? 0) + 3;
  }
  if (units * 6 + 1024 <= MAX_LINE_BYTES) return true;
  const body = recordBody({ seq: Number.MAX_SAFE_INTEGER, prev: GENESIS_MAC, event: e });
  // The line is the body with the MAC member before its closing brace, then a newline.
  return Buffer.byteLength(body) + MAC_SUFFIX_LENGTH <= MAX_LINE_BYTES;
}

/**
 * A record body parsed strictly: undefined unless `body` is exactly the canonical
 * serialisation of a valid record (so duplicate keys, reordered or extra fields, `1e0` for 1,
 * escaped spellings and whitespace all fail).
 */
export function parseBody(body: string): AuditRecordBody | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (!isObject(raw) || raw.v !== AUDIT_FORMAT_VERSION || !isCount(raw.seq)) return undefined;
  if (typeof raw.prev !== 'string' || !HEX64.test(raw.prev)) return undefined;
  let record: AuditRecordBody | undefined;
  if ('event' in raw && !('notice' in raw)) {
    const event = parseEvent(raw.event);
    record = event && { seq: raw.seq, prev: raw.prev, event };
  } else if ('notice' in raw && !('event' in raw)) {
    const notice = parseNotice(raw.notice);
    record = notice && { seq: raw.seq, prev: raw.prev, notice };
  }
  return record !== undefined && recordBody(record) === body ? record : undefined;
}

/** A line checked against the key: its shape, MAC and (when the MAC holds) its fields. */
export type CheckedLine =
  | { readonly shape: false }
  | { readonly shape: true; readonly mac: string; readonly macOk: false }
  | {
      readonly shape: true;
      readonly mac: string;
      readonly macOk: true;
      /** Undefined when the MAC holds but the fields are not a valid v1 record. */
      readonly record: AuditRecordBody | undefined;
    };

export function checkLine(key: Uint8Array, line: string): CheckedLine {
  const split = splitRecordLine(line);
  if (split === undefined) return { shape: false };
  if (!macEquals(hmacHex(key, split.body), split.mac)) return { shape: true, mac: split.mac, macOk: false };
  return { shape: true, mac: split.mac, macOk: true, record: parseBody(split.body) };
}

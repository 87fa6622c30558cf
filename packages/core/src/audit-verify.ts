/**
 * Verifies a JSONL audit log (audit-record.ts) against its anchor and, optionally, a signed
 * head. Never throws for what the files contain — every finding is a typed result naming the
 * first problem and its 1-based line. A log file is read a line at a time, so memory stays
 * bounded by the longest line read (MAX_LINE_BYTES; a longer line is `malformed`) whatever the
 * log's size: read whole, a log past 512 MiB could not be verified at all (the text exceeded
 * what a JavaScript string holds) and smaller ones took several times their size in memory.
 *
 * What each kind means:
 * - `malformed`: a line that is not a v1 record (or whose fields are invalid though its MAC holds).
 * - `edited`: a record whose MAC does not verify where a record belongs (changed content).
 * - `forged`: a record that is not part of this chain: a MAC that does not verify on a record
 *   the chain skips over (inserted), or an authentic record from another chain.
 * - `dropped`, `reordered`, `duplicated`: authentic records missing, out of order, repeated.
 * - `after-head`: records after the anchored head (appended behind the sink's back, or a crash
 *   between append and anchor update that no later open has repaired yet).
 * - `truncated`: fewer records than the anchor names (the tail removed, or the log rolled back).
 * - `torn-tail`: an unterminated last line after the anchored head (a crash mid-append; the
 *   next open of the sink cuts it and records `audit.recovered`).
 * - `rewritten`: the anchor's (or signed anchor's) head is not the record at its count.
 * - `rolled-back`: log and anchor end before a signed head: both were replaced by older copies.
 * - `anchor-missing`, `anchor-invalid`: the anchor file is absent, malformed or its MAC fails.
 */
import { constants } from 'node:fs';
import { type FileHandle, lstat, open } from 'node:fs/promises';
import type { AuditEvent } from './audit.js';
import { type AuditHead, anchorPathFor, notRegular, parseAnchor, readRegularFile } from './audit-anchor.js';
import { type AuditLockOptions, acquireAuditLock } from './audit-lock.js';
import {
  type AuditKeys,
  type AuditNotice,
  checkLine,
  deriveAuditKeys,
  GENESIS_MAC,
  MAX_LINE_BYTES,
  MAX_UNANCHORED_BYTES,
  splitRecordLine,
} from './audit-record.js';
import { KeyportError } from './errors.js';
import { checkFunction } from './validate.js';

export type AuditProblemKind =
  | 'malformed'
  | 'edited'
  | 'forged'
  | 'dropped'
  | 'reordered'
  | 'duplicated'
  | 'after-head'
  | 'truncated'
  | 'torn-tail'
  | 'rewritten'
  | 'rolled-back'
  | 'anchor-missing'
  | 'anchor-invalid';

export interface AuditProblem {
  readonly kind: AuditProblemKind;
  /** 1-based line of the log (0 when the problem is the anchor or a signed head as such). */
  readonly line: number;
  readonly detail: string;
}

export interface AuditVerification {
  readonly ok: boolean;
  /** Complete lines in the log. */
  readonly records: number;
  /** Event records among the verified ones. */
  readonly events: number;
  /** Notices among the verified records: repairs after crashes, events that could not be written. */
  readonly notices: ReadonlyArray<AuditNotice & { readonly line: number }>;
  /** The head of the records verified (all of them when ok). */
  readonly head: AuditHead;
  /** What the anchor file names, when it is valid. */
  readonly anchor: AuditHead | undefined;
  /** The signed head checked against, when one was given. */
  readonly signed: AuditHead | undefined;
  readonly problem?: AuditProblem;
}

export interface VerifyAuditOptions {
  /** The anchor file; default `<log>.anchor`. */
  readonly anchorPath?: string;
  /** A head whose signature was checked (`verifySignedAuditAnchor`): the log must extend it. */
  readonly signed?: AuditHead;
  /** Waiting for the writers' lock. */
  readonly lock?: AuditLockOptions;
  /**
   * Called with each event record the chain accepts, in order, during the one pass that verifies
   * it (a reader that wants the events — last use per key — needs no second read of a log that
   * may have changed since, nor the whole log in memory). An event handed over is trusted only
   * if the verdict is `ok`: a later line can still break the chain. A throw ends the verification
   * with that error (the log is closed, nothing is written).
   */
  readonly onEvent?: (event: AuditEvent) => void;
}

/** Reads and verifies a log and its anchor. Throws only when the log itself cannot be read. */
export async function verifyAuditLog(
  path: string,
  hmacKey: Uint8Array,
  o: VerifyAuditOptions = {},
): Promise<AuditVerification> {
  const keys = deriveAuditKeys(hmacKey); // a bad key is InvalidArgument before any file is touched
  if (o.onEvent !== undefined) checkFunction(o.onEvent, 'options.onEvent');
  await lstat(path).catch((e: NodeJS.ErrnoException) => {
    throw e.code === 'ENOENT' ? new KeyportError('NotFound', 'the audit log does not exist') : e;
  });
  // Log and anchor are taken under the writers' lock, so an append in between cannot make them
  // disagree; a reader without write access to the directory reads without it.
  const lock = await acquireAuditLock(`${path}.lock`, o.lock).catch((e: unknown) => {
    const code = ((e as Error).cause as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return undefined;
    throw e;
  });
  let log: LogSnapshot;
  let anchor: string | undefined;
  try {
    const handle = await openLog(path);
    try {
      const size = (await handle.stat()).size;
      try {
        anchor = await readRegularFile(o.anchorPath ?? anchorPathFor(path), 4096);
      } catch (e) {
        // An anchor that is a symlink, a device or oversized is as good as an invalid one.
        if (!(e instanceof KeyportError)) throw e;
        anchor = '';
      }
      log = await snapshot(handle, size, keys, anchor);
    } catch (e) {
      await handle.close();
      throw e;
    }
  } finally {
    await lock?.release();
  }
  try {
    return await verifySnapshot(log, keys, anchor, o.signed, o.onEvent);
  } finally {
    await log.handle.close();
  }
}

/** Reads an anchor file's head without the log (for signing); Integrity when it is not valid. */
export async function readAuditAnchor(logPath: string, hmacKey: Uint8Array): Promise<AuditHead> {
  const keys = deriveAuditKeys(hmacKey);
  // Read like every audit file: a FIFO there made a plain read wait for ever, a link to
  // /dev/zero read until memory ran out, and a missing anchor threw a bare ENOENT.
  const text = await readRegularFile(anchorPathFor(logPath), 4096);
  if (text === undefined) throw new KeyportError('NotFound', 'the audit anchor does not exist');
  const parsed = parseAnchor(keys.anchor, text);
  if (!parsed.ok) throw new KeyportError('Integrity', 'the audit anchor is not valid');
  return { count: parsed.anchor.count, head: parsed.anchor.head };
}

/**
 * Verifies log text against the anchor text (`undefined` when the anchor file is absent) and
 * an optional signed head. Problems in the records come first, then those of the anchor.
 */
export function verifyAuditText(
  text: string,
  hmacKey: Uint8Array,
  anchorText: string | undefined,
  signed?: AuditHead,
): AuditVerification {
  const check = new ChainCheck(deriveAuditKeys(hmacKey), anchorText, signed);
  const lines = text.split('\n');
  const fragment = lines.pop() as string; // '' when the text ends with a newline
  for (const line of lines) {
    // A UTF-16 unit is at most 3 bytes of UTF-8: only a long line needs counting.
    const fits = line.length * 3 < MAX_LINE_BYTES || Buffer.byteLength(line) < MAX_LINE_BYTES;
    check.push(line, fits);
  }
  const seq = check.question;
  if (seq !== undefined) check.answer(splitRecordLine(lines[seq] as string)?.mac);
  return check.finish(fragment.length > 0);
}

const SEQ_PREFIX = /^\{"v":1,"seq":(0|[1-9]\d{0,15}),/;
/** What of a line longer than any record is kept: enough for SEQ_PREFIX. */
const OVERSIZED_PREFIX_BYTES = 64;
const READ_CHUNK_BYTES = 1024 * 1024;

/**
 * The chain check, fed one complete line at a time (and told at the end whether an
 * unterminated one followed). It keeps no line: a MAC failure is judged on the next line, a
 * record out of place on a scan of the lines after it, and a repeated record on the MAC of the
 * earlier line (`question`/`answer`: the caller looks that line up).
 */
class ChainCheck {
  private readonly keys: AuditKeys;
  private readonly anchor: AuditHead | undefined;
  private readonly anchorProblem: AuditProblem | undefined;
  private readonly anchoredCount: number;
  private lines = 0;
  private prev = GENESIS_MAC;
  private accepted = 0;
  private events = 0;
  private readonly notices: Array<AuditNotice & { line: number }> = [];
  /** The MAC of the record at the signed count, once passed. */
  private signedMac: string | undefined;
  private problem: AuditProblem | undefined;
  /** The record at `index` failed its MAC: forged if the next line continues the chain past it. */
  private macFailed: { index: number } | undefined;
  /** Record `seq` stood where `index` belongs: reordered if a later line is record `index`. */
  private seeking: { index: number; seq: number; found: boolean } | undefined;
  /** Record `seq` came again at `index`: duplicated if its MAC is that of line `seq`. */
  private repeat: { index: number; seq: number; mac: string } | undefined;

  constructor(
    keys: AuditKeys,
    anchorText: string | undefined,
    private readonly signed: AuditHead | undefined,
    private readonly onEvent?: ((event: AuditEvent) => void) | undefined,
  ) {
    this.keys = keys;
    let anchor: AuditHead | undefined;
    if (anchorText === undefined) {
      this.anchorProblem = { kind: 'anchor-missing', line: 0, detail: 'the anchor file is missing' };
    } else {
      const parsed = parseAnchor(keys.anchor, anchorText);
      if (parsed.ok) anchor = { count: parsed.anchor.count, head: parsed.anchor.head };
      else {
        this.anchorProblem = {
          kind: 'anchor-invalid',
          line: 0,
          detail: parsed.reason === 'bad-mac' ? 'the anchor MAC does not verify' : 'the anchor is malformed',
        };
      }
    }
    this.anchor = anchor;
    this.anchoredCount = anchor?.count ?? Number.POSITIVE_INFINITY;
  }

  /** False once nothing but the count of lines is left to learn: lines need not be decoded. */
  get wantsText(): boolean {
    return (
      (this.problem === undefined && this.repeat === undefined) ||
      this.macFailed !== undefined ||
      this.seeking !== undefined
    );
  }

  /** The line whose MAC decides a repeated record, when one was found. */
  get question(): number | undefined {
    return this.repeat?.seq;
  }

  answer(mac: string | undefined): void {
    const r = this.repeat;
    if (r === undefined) return;
    this.repeat = undefined;
    this.problem =
      mac === r.mac
        ? { kind: 'duplicated', line: r.index + 1, detail: `the record repeats line ${r.seq + 1}` }
        : outOfOrder(r.index, r.seq);
  }

  /** One complete line, without its newline; `fits` false: longer than any record (`text` its start). */
  push(text: string, fits: boolean): void {
    const i = this.lines++;
    if (this.macFailed !== undefined) {
      const failed = this.macFailed.index;
      this.macFailed = undefined;
      const next = fits ? checkLine(this.keys.record, text) : undefined;
      const continues =
        next?.shape === true && next.macOk && next.record?.seq === failed && next.record.prev === this.prev;
      this.problem = continues
        ? {
            kind: 'forged',
            line: failed + 1,
            detail: 'a record without a valid MAC was inserted into the chain',
          }
        : { kind: 'edited', line: failed + 1, detail: 'the record MAC does not verify' };
      return;
    }
    if (this.seeking !== undefined) {
      if (SEQ_PREFIX.exec(text)?.[1] === String(this.seeking.index)) this.seeking.found = true;
      return;
    }
    if (this.problem !== undefined || this.repeat !== undefined) return;
    const line = i + 1;
    if (i >= this.anchoredCount) {
      this.problem = {
        kind: 'after-head',
        line,
        detail: `record ${i} comes after the anchored head (${this.anchoredCount} records): appended without the anchor — by someone else, or by a writer that crashed first (the next open re-anchors complete records of a crash)`,
      };
      return;
    }
    if (!fits) {
      this.problem = {
        kind: 'malformed',
        line,
        detail: `longer than any audit record (${MAX_LINE_BYTES} bytes)`,
      };
      return;
    }
    const c = checkLine(this.keys.record, text);
    if (!c.shape) {
      this.problem = { kind: 'malformed', line, detail: 'not an audit record line' };
      return;
    }
    if (!c.macOk) {
      this.macFailed = { index: i };
      return;
    }
    const record = c.record;
    if (record === undefined) {
      this.problem = { kind: 'malformed', line, detail: 'the MAC holds but the fields are not a v1 record' };
      return;
    }
    if (record.seq < i) {
      // Every record accepted so far stands at its own seq: the one this repeats, if any, is there.
      this.repeat = { index: i, seq: record.seq, mac: c.mac };
      return;
    }
    if (record.seq > i) {
      this.seeking = { index: i, seq: record.seq, found: false };
      return;
    }
    if (record.prev !== this.prev) {
      this.problem = { kind: 'forged', line, detail: 'an authentic record from another chain' };
      return;
    }
    this.prev = c.mac;
    this.accepted++;
    if (this.signed !== undefined && i === this.signed.count - 1) this.signedMac = c.mac;
    if ('event' in record) {
      this.events++;
      this.onEvent?.(record.event);
    } else this.notices.push({ ...record.notice, line });
  }

  /** The verdict, once every line was pushed; `fragment`: an unterminated line followed them. */
  finish(fragment: boolean): AuditVerification {
    const lines = this.lines;
    if (this.macFailed !== undefined) {
      const failed = this.macFailed.index;
      this.problem = { kind: 'edited', line: failed + 1, detail: 'the record MAC does not verify' };
    } else if (this.seeking !== undefined) {
      const { index, seq, found } = this.seeking;
      this.problem = found
        ? outOfOrder(index, seq)
        : { kind: 'dropped', line: index + 1, detail: `records ${index}..${seq - 1} are missing` };
    } else if (this.repeat !== undefined) {
      this.answer(undefined);
    }
    if (this.problem !== undefined) return this.result(this.problem);
    if (fragment) {
      return lines < this.anchoredCount
        ? this.result({
            kind: 'truncated',
            line: lines + 1,
            detail: 'the log ends in a partial line before its anchored head',
          })
        : this.result({
            kind: 'torn-tail',
            line: lines + 1,
            detail: 'an unterminated last line (crash mid-append; repaired on next open)',
          });
    }
    const anchorProblem = this.anchorProblem;
    // An empty log with no anchor yet is one no sink has opened: nothing to hold against it.
    if (anchorProblem !== undefined && (lines > 0 || anchorProblem.kind !== 'anchor-missing')) {
      return this.result(anchorProblem);
    }
    const anchor = this.anchor;
    if (anchor !== undefined) {
      if (lines < anchor.count) {
        return this.result({
          kind: 'truncated',
          line: lines,
          detail: `${anchor.count - lines} records after line ${lines} are missing`,
        });
      }
      if (this.prev !== anchor.head) {
        return this.result({
          kind: 'rewritten',
          line: lines,
          detail: 'the last record is not the anchored head',
        });
      }
    }
    const signed = this.signed;
    if (signed !== undefined) {
      if (lines < signed.count) {
        return this.result({
          kind: 'rolled-back',
          line: lines,
          detail: `the log holds ${lines} records but ${signed.count} were signed: log and anchor were rolled back`,
        });
      }
      const at = signed.count === 0 ? GENESIS_MAC : this.signedMac;
      if (at !== signed.head) {
        return this.result({
          kind: 'rewritten',
          line: signed.count,
          detail: 'the record at the signed count is not the signed head',
        });
      }
    }
    return this.result(undefined);
  }

  private result(problem: AuditProblem | undefined): AuditVerification {
    return {
      ok: problem === undefined,
      records: this.lines,
      events: this.events,
      notices: this.notices,
      head: { count: this.accepted, head: this.prev },
      anchor: this.anchor,
      signed: this.signed,
      ...(problem !== undefined ? { problem } : {}),
    };
  }
}

function outOfOrder(index: number, seq: number): AuditProblem {
  return { kind: 'reordered', line: index + 1, detail: `record ${seq} is out of order (expected ${index})` };
}

/**
 * A log as taken under the writers' lock: bytes up to `diskEnd` are read from the file after
 * the lock is released (writers only ever append after the anchored size, and cut only what
 * lies after it), and what lay after the anchored head is read under the lock (`tail`), since
 * the next writer repairs it: cuts a torn line, overwrites it with new records.
 */
interface LogSnapshot {
  readonly handle: FileHandle;
  readonly diskEnd: number;
  readonly tail: Buffer | undefined;
}

async function openLog(path: string): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new KeyportError('NotFound', 'the audit log does not exist');
    if (code === 'ELOOP') throw notRegular(path);
    throw e;
  }
  if (!(await handle.stat()).isFile()) {
    await handle.close();
    throw notRegular(path);
  }
  return handle;
}

async function snapshot(
  handle: FileHandle,
  size: number,
  keys: AuditKeys,
  anchorText: string | undefined,
): Promise<LogSnapshot> {
  const parsed = anchorText === undefined ? undefined : parseAnchor(keys.anchor, anchorText);
  const anchored = parsed?.ok === true ? parsed.anchor.size : undefined;
  // A longer tail is refused by every writer as tampering, so it stays as it is.
  if (anchored === undefined || size <= anchored || size - anchored > MAX_UNANCHORED_BYTES) {
    return { handle, diskEnd: size, tail: undefined };
  }
  const tail = Buffer.alloc(size - anchored);
  const { bytesRead } = await handle.read(tail, 0, tail.length, anchored);
  return { handle, diskEnd: anchored, tail: tail.subarray(0, bytesRead) };
}

/**
 * Calls `onLine` with each complete line of the snapshot (its bytes, valid during the call
 * only; just the start of one longer than any record, with `fits` false) until it returns
 * false. Resolves whether an unterminated line ended the log.
 */
async function eachLine(
  log: LogSnapshot,
  onLine: (bytes: Buffer, fits: boolean) => boolean,
): Promise<boolean> {
  let held: Buffer[] = [];
  let heldBytes = 0;
  let oversized = false;
  const hold = (piece: Buffer): void => {
    if (piece.length === 0 || oversized) return;
    if (heldBytes + piece.length >= MAX_LINE_BYTES) {
      oversized = true;
      held = [Buffer.concat([...held, piece]).subarray(0, OVERSIZED_PREFIX_BYTES)];
      return;
    }
    held.push(Buffer.from(piece)); // a copy: the read buffer is reused
    heldBytes += piece.length;
  };
  /** Feeds a buffer's lines; false once `onLine` asked to stop. */
  const feed = (buf: Buffer): boolean => {
    let at = 0;
    for (let nl = buf.indexOf(0x0a); nl !== -1; nl = buf.indexOf(0x0a, at)) {
      const piece = buf.subarray(at, nl);
      at = nl + 1;
      let go: boolean;
      if (held.length === 0 && !oversized && piece.length < MAX_LINE_BYTES) go = onLine(piece, true);
      else {
        hold(piece);
        go = onLine(oversized ? (held[0] as Buffer) : Buffer.concat(held), !oversized);
      }
      held = [];
      heldBytes = 0;
      oversized = false;
      if (!go) return false;
    }
    hold(buf.subarray(at));
    return true;
  };
  const chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  for (let pos = 0; pos < log.diskEnd; ) {
    const { bytesRead } = await log.handle.read(chunk, 0, Math.min(chunk.length, log.diskEnd - pos), pos);
    if (bytesRead === 0) break; // shorter than it was: what is there is what is verified
    pos += bytesRead;
    if (!feed(chunk.subarray(0, bytesRead))) return false;
  }
  if (log.tail !== undefined && !feed(log.tail)) return false;
  return held.length > 0;
}

async function verifySnapshot(
  log: LogSnapshot,
  keys: AuditKeys,
  anchorText: string | undefined,
  signed: AuditHead | undefined,
  onEvent: ((event: AuditEvent) => void) | undefined,
): Promise<AuditVerification> {
  const check = new ChainCheck(keys, anchorText, signed, onEvent);
  const fragment = await eachLine(log, (bytes, fits) => {
    check.push(check.wantsText ? bytes.toString('utf8') : '', fits);
    return true;
  });
  const seq = check.question;
  if (seq !== undefined) {
    // The earlier record's MAC, from a second pass that stops at it.
    let n = 0;
    let mac: string | undefined;
    await eachLine(log, (bytes, fits) => {
      if (n++ < seq) return true;
      mac = fits ? splitRecordLine(bytes.toString('utf8'))?.mac : undefined;
      return false;
    });
    check.answer(mac);
  }
  return check.finish(fragment);
}

/**
 * Verifies a JSONL audit log (audit-record.ts) against its anchor and, optionally, a signed
 * head. Pure over the texts; never throws for what the files contain — every finding is a
 * typed result naming the first problem and its 1-based line.
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
import { lstat, readFile } from 'node:fs/promises';
import { type AuditHead, anchorPathFor, parseAnchor, readRegularFile } from './audit-anchor.js';
import { type AuditLockOptions, acquireAuditLock } from './audit-lock.js';
import {
  type AuditNotice,
  type CheckedLine,
  checkLine,
  deriveAuditKeys,
  GENESIS_MAC,
} from './audit-record.js';
import { KeyportError } from './errors.js';

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
}

/** Reads and verifies a log and its anchor. Throws only when the log itself cannot be read. */
export async function verifyAuditLog(
  path: string,
  hmacKey: Uint8Array,
  o: VerifyAuditOptions = {},
): Promise<AuditVerification> {
  deriveAuditKeys(hmacKey); // a bad key is InvalidArgument before any file is touched
  await lstat(path).catch((e: NodeJS.ErrnoException) => {
    throw e.code === 'ENOENT' ? new KeyportError('NotFound', 'the audit log does not exist') : e;
  });
  // Log and anchor are read under the writers' lock, so an append in between cannot make them
  // disagree; a reader without write access to the directory reads without it.
  const lock = await acquireAuditLock(`${path}.lock`, o.lock).catch((e: unknown) => {
    const code = ((e as Error).cause as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return undefined;
    throw e;
  });
  let text: string | undefined;
  let anchor: string | undefined;
  try {
    text = await readRegularFile(path, Number.MAX_SAFE_INTEGER);
    try {
      anchor = await readRegularFile(o.anchorPath ?? anchorPathFor(path), 4096);
    } catch (e) {
      // An anchor that is a symlink, a device or oversized is as good as an invalid one.
      if (!(e instanceof KeyportError)) throw e;
      anchor = '';
    }
  } finally {
    await lock?.release();
  }
  if (text === undefined) throw new KeyportError('NotFound', 'the audit log does not exist');
  return verifyAuditText(text, hmacKey, anchor, o.signed);
}

/** Reads an anchor file's head without the log (for signing); Integrity when it is not valid. */
export async function readAuditAnchor(logPath: string, hmacKey: Uint8Array): Promise<AuditHead> {
  const text = await readFile(anchorPathFor(logPath), 'utf8');
  const parsed = parseAnchor(deriveAuditKeys(hmacKey).anchor, text);
  if (!parsed.ok) throw new KeyportError('Integrity', 'the audit anchor is not valid');
  return { count: parsed.anchor.count, head: parsed.anchor.head };
}

const SEQ_PREFIX = /^\{"v":1,"seq":(0|[1-9]\d{0,15}),/;

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
  const keys = deriveAuditKeys(hmacKey);
  const pieces = text.split('\n');
  const fragment = pieces.pop() as string; // '' when the text ends with a newline
  const lines = pieces;

  let anchor: AuditHead | undefined;
  let anchorProblem: AuditProblem | undefined;
  if (anchorText === undefined) {
    if (text.length > 0)
      anchorProblem = { kind: 'anchor-missing', line: 0, detail: 'the anchor file is missing' };
  } else {
    const parsed = parseAnchor(keys.anchor, anchorText);
    if (parsed.ok) anchor = { count: parsed.anchor.count, head: parsed.anchor.head };
    else {
      anchorProblem = {
        kind: 'anchor-invalid',
        line: 0,
        detail: parsed.reason === 'bad-mac' ? 'the anchor MAC does not verify' : 'the anchor is malformed',
      };
    }
  }
  const anchoredCount = anchor?.count ?? Number.POSITIVE_INFINITY;

  let prev = GENESIS_MAC;
  let events = 0;
  const notices: Array<AuditNotice & { line: number }> = [];
  const seen = new Map<string, number>();
  const checked: CheckedLine[] = [];
  const check = (i: number): CheckedLine => {
    let c = checked[i];
    if (c === undefined) {
      c = checkLine(keys.record, lines[i] as string);
      checked[i] = c;
    }
    return c;
  };
  const result = (problem?: AuditProblem): AuditVerification => ({
    ok: problem === undefined,
    records: lines.length,
    events,
    notices,
    head: { count: seen.size, head: prev },
    anchor,
    signed,
    ...(problem !== undefined ? { problem } : {}),
  });
  const fail = (kind: AuditProblemKind, line: number, detail: string): AuditVerification =>
    result({ kind, line, detail });

  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const c = check(i);
    if (i >= anchoredCount) {
      return fail(
        'after-head',
        line,
        `record ${i} comes after the anchored head (${anchoredCount} records): appended without the anchor — by someone else, or by a writer that crashed first (the next open re-anchors complete records of a crash)`,
      );
    }
    if (!c.shape) return fail('malformed', line, 'not an audit record line');
    if (!c.macOk) {
      const next = i + 1 < lines.length ? check(i + 1) : undefined;
      if (next?.shape && next.macOk && next.record?.seq === i && next.record.prev === prev) {
        return fail('forged', line, 'a record without a valid MAC was inserted into the chain');
      }
      return fail('edited', line, 'the record MAC does not verify');
    }
    const record = c.record;
    if (record === undefined)
      return fail('malformed', line, 'the MAC holds but the fields are not a v1 record');
    const earlier = seen.get(c.mac);
    if (earlier !== undefined) return fail('duplicated', line, `the record repeats line ${earlier + 1}`);
    if (record.seq !== i) {
      if (record.seq < i)
        return fail('reordered', line, `record ${record.seq} is out of order (expected ${i})`);
      const later = lines.slice(i + 1).some((l) => SEQ_PREFIX.exec(l)?.[1] === String(i));
      return later
        ? fail('reordered', line, `record ${record.seq} is out of order (expected ${i})`)
        : fail('dropped', line, `records ${i}..${record.seq - 1} are missing`);
    }
    if (record.prev !== prev) return fail('forged', line, 'an authentic record from another chain');
    seen.set(c.mac, i);
    prev = c.mac;
    if ('event' in record) events++;
    else notices.push({ ...record.notice, line });
  }
  if (fragment.length > 0) {
    return lines.length < anchoredCount
      ? fail('truncated', lines.length + 1, 'the log ends in a partial line before its anchored head')
      : fail(
          'torn-tail',
          lines.length + 1,
          'an unterminated last line (crash mid-append; repaired on next open)',
        );
  }
  if (anchorProblem !== undefined) return result(anchorProblem);
  if (anchor !== undefined) {
    if (lines.length < anchor.count) {
      return fail(
        'truncated',
        lines.length,
        `${anchor.count - lines.length} records after line ${lines.length} are missing`,
      );
    }
    if (prev !== anchor.head)
      return fail('rewritten', lines.length, 'the last record is not the anchored head');
  }
  if (signed !== undefined) {
    if (lines.length < signed.count) {
      return fail(
        'rolled-back',
        lines.length,
        `the log holds ${lines.length} records but ${signed.count} were signed: log and anchor were rolled back`,
      );
    }
    const at = signed.count === 0 ? GENESIS_MAC : (check(signed.count - 1) as { mac: string }).mac;
    if (at !== signed.head) {
      return fail('rewritten', signed.count, 'the record at the signed count is not the signed head');
    }
  }
  return result();
}

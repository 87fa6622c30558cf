/**
 * `JsonlAuditSink`: appends MACed, chained records (see audit-record.ts) to a JSONL file that
 * several processes may share. Each append takes the file's lock, re-reads the chain head from
 * the anchor, appends, fsyncs, and replaces the anchor atomically — so concurrent writers
 * extend one chain, and the anchor always names the last record.
 *
 * Crash recovery happens under the lock, on open and before every append: bytes after the
 * anchored head that form complete records continuing the chain (a crash between the append
 * and the anchor update) are adopted; a torn last line (a crash mid-append) is cut — replaced
 * by the append's records, and left in place when the append fails. Either way an
 * `audit.recovered` record says so. Anything else — a log shorter than its anchor, a head
 * that does not match, records after the head that do not continue the chain, a missing or
 * forged anchor — is tampering, and the sink refuses to write (`Integrity`).
 */
import { constants } from 'node:fs';
import { type FileHandle, lstat, open, readdir, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { AuditEvent, AuditSink } from './audit.js';
import {
  type AuditAnchor,
  anchorPathFor,
  formatAnchor,
  notRegular,
  parseAnchor,
  readRegularFile,
  writeFileAtomic,
} from './audit-anchor.js';
import { type AuditLock, type AuditLockOptions, acquireAuditLock } from './audit-lock.js';
import {
  type AuditKeys,
  type AuditNotice,
  type AuditRecordBody,
  checkLine,
  deriveAuditKeys,
  eventFits,
  formatRecord,
  GENESIS_MAC,
  isWritableEvent,
  MAX_LINE_BYTES,
  MAX_UNANCHORED_BYTES,
} from './audit-record.js';
import { KeyportError } from './errors.js';
import { stillHeld } from './file-lock.js';
import { checkInteger, checkOptions, checkString, MAX_TIMER_MS } from './validate.js';

export interface JsonlAuditSinkOptions {
  /** The audit key (at least 32 bytes): MACs records and the anchor, keys context digests. */
  readonly hmacKey: Uint8Array;
  /** The inter-process lock's wait and staleness limits. */
  readonly lock?: AuditLockOptions;
}

const SINK_OPTIONS = { hmacKey: true, lock: true } as const satisfies Record<
  keyof JsonlAuditSinkOptions,
  true
>;
const LOCK_OPTIONS = { timeoutMs: true, staleMs: true } as const satisfies Record<
  keyof AuditLockOptions,
  true
>;

/** Most events written under one lock hold; the rest wait for the next round. */
const MAX_EVENTS_PER_APPEND = 1000;
/**
 * Most bytes of records one append writes (the rest wait for the next round): what a crash
 * leaves after the anchored head is re-anchored on open up to MAX_UNANCHORED_BYTES, and taken
 * for tampering beyond. One record more than this may still fit: it is at most MAX_LINE_BYTES.
 */
const MAX_APPEND_BYTES = MAX_UNANCHORED_BYTES - MAX_LINE_BYTES;

interface Pending {
  readonly event: AuditEvent;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

export class JsonlAuditSink implements AuditSink {
  /** Derived from the audit key; the Keyport client uses it for context digests. */
  readonly contextDigestKey: Uint8Array;
  /** What opening the log had to repair (empty when it was intact). */
  readonly recovered: AuditNotice[] = [];
  private readonly anchorPath: string;
  private readonly lockPath: string;
  /** The anchor text this sink last wrote: when it is still there, nobody else appended. */
  private lastAnchorText: string | undefined;
  private pending: Pending[] = [];
  private draining: Promise<void> | undefined;
  /** Events whose append failed; the next append records how many, so no gap is silent. */
  private lost = 0;
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    private readonly keys: AuditKeys,
    private readonly lockOptions: AuditLockOptions,
  ) {
    this.contextDigestKey = keys.contextDigest;
    this.anchorPath = anchorPathFor(path);
    this.lockPath = `${path}.lock`;
  }

  /** Opens (or creates) a log, repairing a crash's leftovers; `Integrity` when it was tampered with. */
  static async open(path: string, options: JsonlAuditSinkOptions): Promise<JsonlAuditSink> {
    checkString(path, 'path', { min: 1, max: 4096 });
    const nameBytes = Buffer.byteLength(basename(path));
    if (nameBytes > MAX_LOG_NAME_BYTES) {
      // Refused before anything is created: a longer log could be opened and written, then fail
      // with ENAMETOOLONG at its first anchor update or lock break, mid-run.
      throw new KeyportError(
        'InvalidArgument',
        `path: the audit log's file name is ${nameBytes} bytes; at most ${MAX_LOG_NAME_BYTES} (its lock, anchor and their temp files are named after it, within the file system's 255)`,
      );
    }
    // A misspelt option is refused, not ignored (a misspelt `lock` would keep the defaults).
    const o = checkOptions(options, 'options', SINK_OPTIONS);
    const keys = deriveAuditKeys(o.hmacKey as Uint8Array);
    const lock = checkOptions(o.lock, 'options.lock', LOCK_OPTIONS);
    if (lock.timeoutMs !== undefined) checkInteger(lock.timeoutMs, 'options.lock.timeoutMs', 0, MAX_TIMER_MS);
    if (lock.staleMs !== undefined) checkInteger(lock.staleMs, 'options.lock.staleMs', 1, MAX_TIMER_MS);
    const lockOptions: AuditLockOptions = lock;
    let handle: FileHandle;
    try {
      handle = await open(
        path,
        constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK,
        0o600,
      );
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw notRegular(path);
      throw new KeyportError('Unavailable', `the audit log ${basename(path)} cannot be opened`, {
        retryable: false,
        cause: e,
      });
    }
    if (!(await handle.stat()).isFile()) {
      await handle.close();
      throw notRegular(path);
    }
    const sink = new JsonlAuditSink(path, handle, keys, lockOptions);
    try {
      await sink.locked(async (lock) => {
        await removeLeftovers(path);
        const { notices } = await sink.appendLocked(lock, []);
        sink.recovered.push(...notices);
      });
    } catch (e) {
      await handle.close();
      // Typed like a failed write (a bare EIO or ENOSPC from the anchor's replacement escaped).
      throw cannotWrite(path, e);
    }
    return sink;
  }

  /** Resolves once the event is in the log and the anchor names it; rejects when it cannot be. */
  write(event: AuditEvent): Promise<void> {
    if (this.closed) {
      return Promise.reject(
        new KeyportError('Unavailable', 'the audit sink is closed', { retryable: false }),
      );
    }
    // A copy (the caller may reuse its object before the append happens), and the copy is what
    // is checked: a getter read once for the check and again for the copy could slip a value
    // past the check into a MACed record that no reader accepts — and that no later open of
    // the log gets past.
    let copy: AuditEvent | undefined;
    try {
      copy = { ...event, contextKeys: [...event.contextKeys] };
    } catch {
      copy = undefined;
    }
    if (copy === undefined || !isWritableEvent(copy)) {
      return Promise.reject(
        new KeyportError('InvalidArgument', 'the audit event has a field of the wrong type or range'),
      );
    }
    if (!eventFits(copy)) {
      return Promise.reject(
        new KeyportError(
          'InvalidArgument',
          `the audit event is too large: its record would be longer than ${MAX_LINE_BYTES} bytes`,
        ),
      );
    }
    const checked = copy;
    return new Promise((resolve, reject) => {
      this.pending.push({ event: checked, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.draining !== undefined) return;
    // Started a tick later, so events written in one synchronous burst share one append.
    this.draining = new Promise<void>((r) => setImmediate(r))
      .then(() => this.drain())
      .finally(() => {
        this.draining = undefined;
        // A write that arrived while the last round was settling starts the next one.
        if (this.pending.length > 0) this.kick();
      });
  }

  private async drain(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, MAX_EVENTS_PER_APPEND);
      try {
        const { events } = await this.locked((lock) =>
          this.appendLocked(
            lock,
            batch.map((p) => p.event),
          ),
        );
        for (const p of batch.slice(0, events)) p.resolve();
        // What did not fit this append goes first in the next, in the order it was written.
        this.pending.unshift(...batch.slice(events));
      } catch (e) {
        this.lost += batch.length;
        const error = cannotWrite(this.path, e);
        for (const p of batch) p.reject(error);
      }
    }
  }

  private async locked<T>(run: (lock: AuditLock) => Promise<T>): Promise<T> {
    const lock = await acquireAuditLock(this.lockPath, this.lockOptions);
    try {
      return await run(lock);
    } finally {
      await lock.release();
    }
  }

  /**
   * Under the lock: reads the head, repairs a crash's leftovers, appends the notices and
   * events (as many as fit MAX_APPEND_BYTES, at least one), fsyncs, and replaces the anchor.
   * Returns the notices it wrote and how many of the events.
   */
  private async appendLocked(
    lock: AuditLock,
    events: readonly AuditEvent[],
  ): Promise<{ notices: AuditNotice[]; events: number }> {
    const { anchor, notices, torn } = await this.currentHead();
    const lost = this.lost;
    if (lost > 0) notices.push({ type: 'audit.lost', ts: new Date().toISOString(), events: lost });
    const bodies: Array<{ notice: AuditNotice } | { event: AuditEvent }> = [
      ...notices.map((notice) => ({ notice })),
      ...events.map((event) => ({ event })),
    ];
    if (bodies.length === 0) return { notices, events: 0 };
    let seq = anchor.count;
    let prev = anchor.head;
    let text = '';
    let bytes = 0;
    let taken = 0;
    for (const b of bodies) {
      // Events were checked by write(); notices are built here.
      const { line, mac } = formatRecord(
        this.keys.record,
        { seq, prev, ...b } as AuditRecordBody,
        'event' in b,
      );
      const lineBytes = Buffer.byteLength(line) + 1;
      if (bytes > 0 && bytes + lineBytes > MAX_APPEND_BYTES) break;
      text += `${line}\n`;
      bytes += lineBytes;
      prev = mac;
      seq++;
      if ('event' in b) taken++;
    }
    const data = Buffer.from(text, 'utf8');
    // The records go at the offset read under the lock. A lock broken meanwhile (removed, or
    // judged abandoned by a writer on another host while this one was paused) may have let
    // another writer append there: writing now would overwrite its records. Checked outside
    // the try: its clean-up cuts the log back to the head read, which is no longer the head.
    if (!(await stillHeld(lock))) {
      throw new KeyportError(
        'Unavailable',
        `the audit log lock ${basename(this.lockPath)} was taken over while this append held it: nothing was written`,
        { retryable: false },
      );
    }
    try {
      let written = 0;
      while (written < data.length) {
        const { bytesWritten } = await this.handle.write(
          data,
          written,
          data.length - written,
          anchor.size + written,
        );
        written += bytesWritten;
      }
      // The records overwrote a crash's torn line; whatever of it lies past them is cut.
      if (torn.length > data.length) await this.handle.truncate(anchor.size + data.length);
      await this.handle.sync();
      const next: AuditAnchor = { count: seq, size: anchor.size + data.length, head: prev };
      const anchorText = formatAnchor(this.keys.anchor, next);
      await writeFileAtomic(this.anchorPath, anchorText);
      this.lastAnchorText = anchorText;
    } catch (e) {
      // Keep the log as it was found: what this append wrote is cut (and reported as lost), and
      // a torn line it overwrote is put back, so the next append still finds and records it (cut
      // before this append, it vanished without an audit.recovered record when the append failed).
      await this.handle.truncate(anchor.size).catch(() => undefined);
      if (torn.length > 0) await this.handle.write(torn, 0, torn.length, anchor.size).catch(() => undefined);
      throw e;
    }
    this.lost -= lost;
    return { notices, events: taken };
  }

  /**
   * The anchored head, after adopting what a crash left behind it; `torn`: the unterminated
   * line after the adopted records, which the append overwrites (and cuts).
   */
  private async currentHead(): Promise<{ anchor: AuditAnchor; notices: AuditNotice[]; torn: Buffer }> {
    const name = basename(this.path);
    const tampered = (why: string): KeyportError =>
      new KeyportError('Integrity', `the audit log ${name} ${why}; run \`keyport audit verify\``, {
        retryable: false,
      });
    const anchorText = await readRegularFile(this.anchorPath, 4096);
    const stat = await this.handle.stat({ bigint: true });
    // The sink writes through the handle it opened: a log removed, renamed or replaced (by a
    // symlink, a FIFO, a directory, another file) since then would take acknowledged records
    // into a file nobody reads, while the anchor beside the path names them. Refused instead.
    const there = await lstat(this.path, { bigint: true }).catch(() => undefined);
    if (there === undefined || there.ino !== stat.ino || there.dev !== stat.dev) {
      // Not `tampered`: `audit verify` of a removed log only says it is missing.
      throw new KeyportError(
        'Integrity',
        `the audit log ${name} was removed or replaced since this sink opened it; records written since are not in the log at that path: find out what moved it, then open a new sink`,
        { retryable: false },
      );
    }
    const size = Number(stat.size);
    if (anchorText === undefined) {
      if (size !== 0) throw tampered('has no anchor file (removed, or written by an older keyport)');
      const fresh: AuditAnchor = { count: 0, size: 0, head: GENESIS_MAC };
      const text = formatAnchor(this.keys.anchor, fresh);
      await writeFileAtomic(this.anchorPath, text, { syncDir: true });
      this.lastAnchorText = text;
      return { anchor: fresh, notices: [], torn: NOTHING };
    }
    const parsed = parseAnchor(this.keys.anchor, anchorText);
    if (!parsed.ok) {
      throw tampered(
        parsed.reason === 'bad-mac'
          ? 'has an anchor whose MAC does not verify (edited, or another audit key)'
          : 'has a malformed anchor',
      );
    }
    const anchor = parsed.anchor;
    if (anchorText === this.lastAnchorText && size === anchor.size)
      return { anchor, notices: [], torn: NOTHING };
    if (size < anchor.size)
      throw tampered(`is ${anchor.size - size} bytes shorter than its anchor (truncated)`);
    await this.checkHead(anchor, tampered);
    if (size === anchor.size) return { anchor, notices: [], torn: NOTHING };
    return this.recoverTail(anchor, size, tampered);
  }

  /** The record ending at the anchored size is the anchored head. */
  private async checkHead(anchor: AuditAnchor, tampered: (why: string) => KeyportError): Promise<void> {
    if (anchor.count === 0) {
      if (anchor.size !== 0) throw tampered('has an anchor that does not match it');
      return;
    }
    const line = await this.lastLineBefore(anchor.size);
    const c = line === undefined ? undefined : checkLine(this.keys.record, line);
    if (
      c === undefined ||
      !c.shape ||
      !c.macOk ||
      c.record === undefined ||
      c.record.seq !== anchor.count - 1 ||
      c.mac !== anchor.head
    ) {
      throw tampered('does not end in the record its anchor names (rewritten or rolled back)');
    }
  }

  private async recoverTail(
    anchor: AuditAnchor,
    size: number,
    tampered: (why: string) => KeyportError,
  ): Promise<{ anchor: AuditAnchor; notices: AuditNotice[]; torn: Buffer }> {
    const length = size - anchor.size;
    if (length > MAX_UNANCHORED_BYTES) throw tampered(`has ${length} bytes after its anchored head`);
    const extra = Buffer.alloc(length);
    await this.handle.read(extra, 0, length, anchor.size);
    let seq = anchor.count;
    let prev = anchor.head;
    let at = 0;
    for (let nl = extra.indexOf(0x0a); nl !== -1; nl = extra.indexOf(0x0a, at)) {
      const c = checkLine(this.keys.record, extra.subarray(at, nl).toString('utf8'));
      if (!c.shape || !c.macOk || c.record?.seq !== seq || c.record.prev !== prev) {
        throw tampered('has records after its anchored head that do not continue the chain');
      }
      prev = c.mac;
      seq++;
      at = nl + 1;
    }
    const tornBytes = length - at;
    return {
      anchor: { count: seq, size: anchor.size + at, head: prev },
      torn: extra.subarray(at),
      notices: [
        {
          type: 'audit.recovered',
          ts: new Date().toISOString(),
          tornBytes,
          adoptedRecords: seq - anchor.count,
        },
      ],
    };
  }

  /** The line that ends with the newline just before `end`, read backwards in chunks. */
  private async lastLineBefore(end: number): Promise<string | undefined> {
    const chunk = 64 * 1024;
    const parts: Buffer[] = [];
    let pos = end;
    let total = 0;
    for (;;) {
      const from = Math.max(0, pos - chunk);
      const buf = Buffer.alloc(pos - from);
      await this.handle.read(buf, 0, buf.length, from);
      const scanned = total === 0 ? buf.subarray(0, buf.length - 1) : buf;
      if (total === 0 && buf[buf.length - 1] !== 0x0a) return undefined;
      const nl = scanned.lastIndexOf(0x0a);
      if (nl !== -1) {
        parts.unshift(scanned.subarray(nl + 1));
        break;
      }
      parts.unshift(scanned);
      total += buf.length;
      if (from === 0) break;
      if (total > MAX_LINE_BYTES) return undefined;
      pos = from;
    }
    return Buffer.concat(parts).toString('utf8');
  }

  /** Waits for pending appends, then closes the file; later writes are refused. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.draining !== undefined) await this.draining;
    await this.handle.close();
  }
}

const NOTHING = Buffer.alloc(0);

function cannotWrite(path: string, e: unknown): KeyportError {
  return e instanceof KeyportError
    ? e
    : new KeyportError('Unavailable', `the audit log ${basename(path)} cannot be written`, {
        retryable: false,
        cause: e,
      });
}

/**
 * The longest audit log file name, in bytes: the longest name derived from it must fit NAME_MAX
 * (255). That is a temp anchor, `.<log>.anchor.tmp-<pid>-<12 hex>` (33 bytes more with a 7-digit
 * pid, Linux's largest), one more than a moved-aside lock (`<log>.lock.break.<pid>.<12 hex>`).
 * Cut names would not do: removeLeftovers recognises those files by the log's whole name.
 */
const MAX_LOG_NAME_BYTES = 255 - 33;

/**
 * Under the lock, no anchor is being replaced and no lock being broken: temp anchors and
 * moved-aside locks still there were left by a process killed half-way, and are removed.
 */
async function removeLeftovers(log: string): Promise<void> {
  const name = basename(log);
  const prefixes = [`.${name}.anchor.tmp-`, `${name}.lock.break.`];
  const names = await readdir(dirname(log)).catch(() => [] as string[]);
  await Promise.all(
    names
      .filter((n) => prefixes.some((p) => n.startsWith(p)))
      .map((n) => unlink(join(dirname(log), n)).catch(() => undefined)),
  );
}

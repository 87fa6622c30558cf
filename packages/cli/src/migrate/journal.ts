/**
 * The migration journal: one JSON line per state change of one file, in order. States:
 * pending (with the run's temp file name) -> rewrapped (temp written) -> verified (temp synced
 * and opened with --to alone) -> replaced (renamed over the original). `skipped` and `failed`
 * end a file's run. `pending` is fsynced before the temp file exists (so a killed run's temp is
 * always found); the steps after it are progress, synced with the next group commit.
 *
 * The journal is progress and reporting, not the truth: whether a file is migrated is read
 * from its header each run (see files.ts). What a resumed run takes from it is the temp files
 * a killed run left, to remove them. Only the run holding the journal's lock writes it.
 *
 * Writes are group-committed: lines queued while a sync runs go out in the next write, with
 * one fsync, so --jobs workers do not wait on each other's syncs one by one.
 */
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { KeyportError } from '@keyport/core';
import { CliError, fileError, quotePath } from '../cli-errors.js';
import { writeAll } from '../files/output-file.js';
import { isMigrationTempOf } from './plan.js';

export type FileState = 'pending' | 'rewrapped' | 'verified' | 'replaced' | 'skipped' | 'failed';

export interface JournalHeader {
  readonly journal: 'keyport-migrate/1';
  readonly from: string;
  readonly to: string;
  readonly removeSource: boolean;
}

interface Entry {
  readonly f: string;
  readonly s: FileState;
  readonly why?: string;
  /** The temp file of the run that wrote `pending`. */
  readonly tmp?: string;
}

export class Journal {
  private readonly states = new Map<string, Entry>();
  /**
   * Files some run recorded `replaced`, whatever came after: a later `failed` (the file since
   * removed) must not hide that it was migrated once.
   */
  private readonly replaced = new Set<string>();
  private queue: string[] = [];
  private waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  private flushing = false;
  /** The group commit in progress (it runs until the queue is empty). */
  private flushed: Promise<void> = Promise.resolve();

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
  ) {}

  static async open(path: string, header: JournalHeader): Promise<Journal> {
    let handle: FileHandle;
    try {
      // Never through a symlink (O_NOFOLLOW), never waiting on a FIFO (O_NONBLOCK), never taking
      // a terminal (O_NOCTTY): `--journal` naming one of those is refused below, not written.
      handle = await open(
        path,
        constants.O_RDWR |
          constants.O_APPEND |
          constants.O_CREAT |
          constants.O_NOFOLLOW |
          constants.O_NONBLOCK |
          constants.O_NOCTTY,
        0o600,
      );
    } catch (e) {
      throw fileError(e, path, 'cannot open the journal');
    }
    const journal = new Journal(path, handle);
    // Line by line: a journal of a million files is hundreds of MB (four steps a file), more than
    // one string may hold; it was read whole, and a resumed run of that size failed.
    let lines = 0;
    try {
      await readJournal(handle, path, (line) => {
        if (lines++ === 0) sameMigration(line, header, path);
        else journal.take(line);
      });
    } catch (e) {
      await handle.close().catch(() => undefined);
      throw e;
    }
    if (lines === 0) await journal.append(JSON.stringify(header));
    return journal;
  }

  /** One entry line of an existing journal (a damaged one is skipped: the journal is progress only). */
  private take(line: string): void {
    const entry = line === '' ? undefined : parseLine<Entry>(line);
    if (entry === undefined || typeof entry.f !== 'string') return;
    const before = this.states.get(entry.f);
    if (entry.s === 'replaced') this.replaced.add(entry.f);
    // Keep the temp name of the file's last unfinished attempt.
    const tmp = entry.tmp ?? (entry.s === 'replaced' || entry.s === 'pending' ? undefined : before?.tmp);
    this.states.set(
      entry.f,
      tmp === undefined ? { f: entry.f, s: entry.s } : { f: entry.f, s: entry.s, tmp },
    );
  }

  /** Temp files of attempts a killed run left unfinished (to be removed before this run starts). */
  leftoverTemps(): string[] {
    const out: string[] = [];
    for (const e of this.states.values()) {
      // Only a name this file's temps have: a journal edited by hand (or damaged into valid
      // JSON) that lists some other path must not get that file removed.
      if (typeof e.tmp === 'string' && e.s !== 'replaced' && isMigrationTempOf(e.f, e.tmp)) out.push(e.tmp);
    }
    return out;
  }

  state(file: string): Entry | undefined {
    return this.states.get(file);
  }

  wasReplaced(file: string): boolean {
    return this.replaced.has(file);
  }

  /** Records a state change durably (returns after the fsync). */
  record(file: string, state: FileState, extra: { why?: string; tmp?: string } = {}): Promise<void> {
    const entry: Entry = { f: file, s: state, ...extra };
    this.states.set(file, entry);
    if (state === 'replaced') this.replaced.add(file);
    return this.append(JSON.stringify({ ...entry, t: new Date().toISOString() }));
  }

  private append(line: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push(`${line}\n`);
      this.waiters.push({ resolve, reject });
      if (!this.flushing) this.flushed = this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const lines = this.queue.join('');
        const waiters = this.waiters;
        this.queue = [];
        this.waiters = [];
        try {
          await writeAll(this.handle, Buffer.from(lines, 'utf8'));
          await this.handle.datasync();
          for (const w of waiters) w.resolve();
        } catch (e) {
          const error = fileError(e, this.path, 'cannot write the journal');
          for (const w of waiters) w.reject(error);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  /** Closes the journal after the lines queued so far are written and synced. */
  async close(): Promise<void> {
    await this.flushed.catch(() => undefined);
    await this.handle.close();
  }
}

/** The start of every journal's first line, whatever its keys: what a header cut short still shows. */
const HEADER_START = '{"journal":"keyport-migrate/1"';

/** Refuses a journal whose header names another migration (before anything of it is changed). */
function sameMigration(first: string, header: JournalHeader, path: string): void {
  const h = parseLine<Partial<JournalHeader>>(first) ?? {};
  if (
    h.journal !== header.journal ||
    h.from !== header.from ||
    h.to !== header.to ||
    h.removeSource !== header.removeSource
  ) {
    throw new KeyportError(
      'InvalidArgument',
      `the journal ${path} belongs to another migration (--from, --to or --remove-source differ); finish that one or pass another --journal`,
    );
  }
}

/** Bytes read from the journal at a time. */
const READ_CHUNK_BYTES = 1024 * 1024;
/**
 * A journal line is a path (at most 4 KiB), a temp name and a few fields: one longer than this is
 * damage, skipped without being held; a first line longer than this is no journal's header.
 */
const MAX_LINE_BYTES = 256 * 1024;

function notAJournal(path: string): KeyportError {
  // The file's content is not quoted: it may be anything, a secret included.
  return new KeyportError(
    'InvalidArgument',
    `${quotePath(path)} is not a keyport migration journal, and was left as it is; pass --journal with a new file name or an existing journal`,
  );
}

/**
 * The journal's complete lines, one at a time (`onLine`, which may throw to stop), after checking
 * it is one: a regular file, empty or starting with a journal header. Anything else — a user's
 * file named by a careless `--journal`, an envelope, a FIFO — is refused untouched, before a
 * byte of it is cut or appended to, and without reading past its first line. Only once every
 * line was read is a last line cut short by a crash removed (its step is simply redone). At
 * most one chunk and one line are held, whatever the journal's size.
 */
async function readJournal(handle: FileHandle, path: string, onLine: (line: string) => void): Promise<void> {
  const st = await handle.stat().catch((e: unknown) => {
    throw fileError(e, path, 'cannot read the journal');
  });
  if (!st.isFile()) {
    throw new CliError(
      'NotARegularFile',
      `the journal ${quotePath(path)} is not a regular file; pass --journal with a file name`,
      { path },
    );
  }
  const buffer = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  /** The start of the line being read (bytes of earlier chunks), unless it grew past the bound. */
  let partial: Buffer[] = [];
  let partialBytes = 0;
  let oversized = false;
  let lines = 0;
  /** File offset of the next read, and just past the last newline read. */
  let at = 0;
  let complete = 0;
  const line = (piece: Buffer): void => {
    const bytes = partial.length === 0 ? piece : Buffer.concat([...partial, piece]);
    const skipped = oversized || bytes.length > MAX_LINE_BYTES;
    partial = [];
    partialBytes = 0;
    oversized = false;
    if (lines++ === 0) {
      if (
        skipped ||
        parseLine<Partial<JournalHeader>>(bytes.toString('utf8'))?.journal !== 'keyport-migrate/1'
      )
        throw notAJournal(path);
    } else if (skipped) return;
    onLine(bytes.toString('utf8'));
  };
  for (;;) {
    let read: number;
    try {
      ({ bytesRead: read } = await handle.read(buffer, 0, READ_CHUNK_BYTES, at));
    } catch (e) {
      throw fileError(e, path, 'cannot read the journal');
    }
    if (read === 0) break;
    const chunk = buffer.subarray(0, read);
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      line(chunk.subarray(start, nl));
      start = nl + 1;
      complete = at + start;
    }
    if (start < read && !oversized) {
      partialBytes += read - start;
      if (partialBytes > MAX_LINE_BYTES) {
        // A first line this long is no header: refused without reading the rest of the file.
        if (lines === 0) throw notAJournal(path);
        oversized = true;
        partial = [];
      } else partial.push(Buffer.from(chunk.subarray(start))); // a copy: the buffer is reused
    }
    at += read;
  }
  if (lines === 0) {
    // No whole line: empty, or a header a crash cut short (the run that wrote it did nothing else).
    const first = Buffer.concat(partial).toString('utf8');
    if (!(HEADER_START.startsWith(first) || first.startsWith(HEADER_START))) throw notAJournal(path);
  }
  if (complete < at) {
    try {
      await handle.truncate(complete);
    } catch (e) {
      throw fileError(e, path, 'cannot write the journal');
    }
  }
}

function parseLine<T>(line: string): T | undefined {
  try {
    return JSON.parse(line) as T;
  } catch {
    return undefined;
  }
}

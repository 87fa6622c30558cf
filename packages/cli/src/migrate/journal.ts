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
    let text: string;
    try {
      text = await readJournal(handle, path);
    } catch (e) {
      await handle.close().catch(() => undefined);
      throw e;
    }
    const lines = text.split('\n').filter((l) => l !== '');
    const journal = new Journal(path, handle);
    if (lines.length === 0) {
      await journal.append(JSON.stringify(header));
      return journal;
    }
    const first = parseLine<Partial<JournalHeader>>(lines[0] as string) ?? {};
    if (
      first.journal !== header.journal ||
      first.from !== header.from ||
      first.to !== header.to ||
      first.removeSource !== header.removeSource
    ) {
      await handle.close();
      throw new KeyportError(
        'InvalidArgument',
        `the journal ${path} belongs to another migration (--from, --to or --remove-source differ); finish that one or pass another --journal`,
      );
    }
    for (const line of lines.slice(1)) {
      const entry = parseLine<Entry>(line);
      if (entry === undefined || typeof entry.f !== 'string') continue; // damaged: progress only
      const before = journal.states.get(entry.f);
      if (entry.s === 'replaced') journal.replaced.add(entry.f);
      // Keep the temp name of the file's last unfinished attempt.
      const tmp = entry.tmp ?? (entry.s === 'replaced' || entry.s === 'pending' ? undefined : before?.tmp);
      journal.states.set(
        entry.f,
        tmp === undefined ? { f: entry.f, s: entry.s } : { f: entry.f, s: entry.s, tmp },
      );
    }
    return journal;
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

/**
 * The journal's complete lines, after checking it is one: a regular file, empty or starting
 * with a journal header. Anything else — a user's file named by a careless `--journal`, an
 * envelope, a FIFO — is refused untouched, before a byte of it is cut or appended to. Only
 * then is a last line cut short by a crash removed (its step is simply redone).
 */
async function readJournal(handle: FileHandle, path: string): Promise<string> {
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
  let bytes: Buffer;
  try {
    bytes = await handle.readFile();
  } catch (e) {
    throw fileError(e, path, 'cannot read the journal');
  }
  const firstEnd = bytes.indexOf(0x0a);
  const first = bytes.subarray(0, firstEnd < 0 ? bytes.length : firstEnd).toString('utf8');
  const isJournal =
    firstEnd < 0
      ? // No whole line: empty, or a header a crash cut short (the run that wrote it did nothing else).
        HEADER_START.startsWith(first) || first.startsWith(HEADER_START)
      : parseLine<Partial<JournalHeader>>(first)?.journal === 'keyport-migrate/1';
  if (!isJournal) {
    // The file's content is not quoted: it may be anything, a secret included.
    throw new KeyportError(
      'InvalidArgument',
      `${quotePath(path)} is not a keyport migration journal, and was left as it is; pass --journal with a new file name or an existing journal`,
    );
  }
  const complete = bytes.lastIndexOf(0x0a) + 1;
  if (complete < bytes.length) {
    try {
      await handle.truncate(complete);
    } catch (e) {
      throw fileError(e, path, 'cannot write the journal');
    }
  }
  return bytes.subarray(0, complete).toString('utf8');
}

function parseLine<T>(line: string): T | undefined {
  try {
    return JSON.parse(line) as T;
  } catch {
    return undefined;
  }
}

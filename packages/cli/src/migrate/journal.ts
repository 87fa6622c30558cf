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
import { type FileHandle, open, readFile, truncate } from 'node:fs/promises';
import { KeyportError } from '@keyport/core';
import { fileError, isErrno } from '../cli-errors.js';
import { writeAll } from '../files/output-file.js';

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
    let text = '';
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if (!(isErrno(e) && e.code === 'ENOENT')) throw fileError(e, path, 'cannot read the journal');
    }
    // A line cut short by a crash is dropped (its step is simply redone).
    const complete = text.lastIndexOf('\n') + 1;
    let handle: FileHandle;
    try {
      if (complete < text.length) await truncate(path, Buffer.byteLength(text.slice(0, complete)));
      handle = await open(path, 'a', 0o600);
    } catch (e) {
      throw fileError(e, path, 'cannot write the journal');
    }
    const lines = text
      .slice(0, complete)
      .split('\n')
      .filter((l) => l !== '');
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
      if (e.tmp !== undefined && e.s !== 'replaced') out.push(e.tmp);
    }
    return out;
  }

  state(file: string): Entry | undefined {
    return this.states.get(file);
  }

  /** Records a state change durably (returns after the fsync). */
  record(file: string, state: FileState, extra: { why?: string; tmp?: string } = {}): Promise<void> {
    const entry: Entry = { f: file, s: state, ...extra };
    this.states.set(file, entry);
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

function parseLine<T>(line: string): T | undefined {
  try {
    return JSON.parse(line) as T;
  } catch {
    return undefined;
  }
}

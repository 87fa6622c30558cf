/**
 * The migration journal: one JSON line per state change of one file, fsynced before the next
 * step starts, so a run killed at any instant can be resumed and finishes each file exactly
 * once. States, in order: pending -> rewrapped (temp written and synced) -> verified (temp
 * opens with --to alone) -> replaced (renamed over the original). `skipped` and `failed` end
 * a file's run; failed files are retried by the next run.
 *
 * Writes are group-committed: lines queued while a sync runs go out in the next write, with
 * one fsync, so --jobs workers do not wait on each other's syncs one by one.
 */
import { type FileHandle, open, readFile, truncate } from 'node:fs/promises';
import { KeyportError } from '@keyport/core';

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
}

export class Journal {
  private readonly states = new Map<string, Entry>();
  private queue: string[] = [];
  private waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  private flushing = false;

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
  ) {}

  static async open(path: string, header: JournalHeader): Promise<Journal> {
    let text = '';
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    // A line cut short by a crash is dropped (its step is simply redone).
    const complete = text.lastIndexOf('\n') + 1;
    if (complete < text.length) await truncate(path, Buffer.byteLength(text.slice(0, complete)));
    const lines = text
      .slice(0, complete)
      .split('\n')
      .filter((l) => l !== '');
    const handle = await open(path, 'a', 0o600);
    const journal = new Journal(path, handle);
    if (lines.length === 0) {
      await journal.append(JSON.stringify(header));
      return journal;
    }
    const first = JSON.parse(lines[0] as string) as Partial<JournalHeader>;
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
      const entry = JSON.parse(line) as Entry;
      journal.states.set(entry.f, entry);
    }
    return journal;
  }

  state(file: string): Entry | undefined {
    return this.states.get(file);
  }

  /** Records a state change durably (returns after the fsync). */
  record(file: string, state: FileState, why?: string): Promise<void> {
    const entry: Entry = why === undefined ? { f: file, s: state } : { f: file, s: state, why };
    this.states.set(file, entry);
    return this.append(JSON.stringify({ ...entry, t: new Date().toISOString() }));
  }

  private append(line: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push(`${line}\n`);
      this.waiters.push({ resolve, reject });
      void this.flush();
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
          await this.handle.write(lines);
          await this.handle.datasync();
          for (const w of waiters) w.resolve();
        } catch (e) {
          for (const w of waiters) w.reject(e);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

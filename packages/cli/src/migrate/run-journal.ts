/**
 * One run's bookkeeping on top of the journal (journal.ts): what each file's step records, and
 * how a file found already migrated or skipped is brought in line. A dry run keeps no journal;
 * its bookkeeping records nothing.
 */
import { lstat, unlink } from 'node:fs/promises';
import { Journal, type JournalHeader } from './journal.js';

type RecordArgs = Parameters<Journal['record']>;

export class RunJournal {
  private constructor(private readonly journal: Journal | undefined) {}

  /** The dry run's: records nothing. */
  static none(): RunJournal {
    return new RunJournal(undefined);
  }

  /**
   * Opens (or resumes) the journal and removes the temp files a killed run of it left behind
   * (the lock, already held, says that run is gone).
   */
  static async open(path: string, header: JournalHeader): Promise<RunJournal> {
    const journal = await Journal.open(path, header);
    for (const tmp of journal.leftoverTemps()) await removeLeftoverTemp(tmp);
    return new RunJournal(journal);
  }

  /** The journal's path, or undefined for a dry run. */
  get path(): string | undefined {
    return this.journal?.path;
  }

  /** Records a step of `file` durably (after the fsync), or nothing in a dry run. */
  async record(file: string, state: RecordArgs[1], extra?: RecordArgs[2]): Promise<void> {
    await this.journal?.record(file, state, extra);
  }

  /**
   * Records a step of `file` without waiting for its fsync: the line is queued in order and
   * synced with the next group commit (a failure to write it shows at the next awaited record).
   */
  note(file: string, state: RecordArgs[1]): void {
    this.journal?.record(file, state).catch(() => undefined);
  }

  /**
   * A file whose header says it is migrated. When this journal had started it (a run killed
   * between the rename and its record), the journal is brought in line: `replaced`.
   */
  async alreadyDone(file: string): Promise<void> {
    const last = this.journal?.state(file)?.s;
    if (last !== undefined && last !== 'replaced' && last !== 'skipped') await this.record(file, 'replaced');
  }

  /** Whether this journal records `file` renamed into place (replaced) by any run. */
  wasReplaced(file: string): boolean {
    return this.journal?.wasReplaced(file) === true;
  }

  /** Best effort: a skip is reported whether or not the journal takes the line. */
  async skipped(file: string, why: string): Promise<void> {
    if (this.journal?.state(file)?.s !== 'skipped')
      await this.record(file, 'skipped', { why }).catch(() => undefined);
  }

  /** Best effort: a failure is reported whether or not the journal takes the line. */
  async failed(file: string, code: string): Promise<void> {
    await this.record(file, 'failed', { why: code }).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.journal?.close().catch(() => undefined);
  }
}

/**
 * Removes a killed run's temp only if it is a regular file of this user: a symlink, FIFO or
 * another user's file that took its name since is not ours to remove.
 */
async function removeLeftoverTemp(tmp: string): Promise<void> {
  const st = await lstat(tmp).catch(() => undefined);
  const uid = process.geteuid?.();
  if (st === undefined || !st.isFile() || (uid !== undefined && st.uid !== uid)) return;
  await unlink(tmp).catch(() => undefined);
}

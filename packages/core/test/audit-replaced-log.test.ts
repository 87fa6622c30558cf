/**
 * A log removed, renamed or replaced while a sink has it open: the sink writes through the
 * handle it opened, so its records went to a file nobody reads (an unlinked inode, a rotated
 * copy) and every write was acknowledged. It now refuses the append (`Integrity`).
 */
import { execFileSync } from 'node:child_process';
import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JsonlAuditSink } from '../src/index.js';
import { event, KEY, tempLog } from './support/audit.js';

const REPLACEMENTS: Record<string, (log: string) => Promise<void>> = {
  removed: (log) => rm(log),
  renamed: (log) => rename(log, `${log}.1`),
  'replaced by a directory': async (log) => {
    await rm(log);
    await mkdir(log);
  },
  'replaced by a symlink': async (log) => {
    const other = join(dirname(log), 'other.jsonl');
    await writeFile(other, '');
    await rm(log);
    await symlink(other, log);
  },
  'replaced by another file': async (log) => {
    const other = join(dirname(log), 'other.jsonl');
    await writeFile(other, '');
    await rename(other, log);
  },
};
if (process.platform !== 'win32') {
  REPLACEMENTS['replaced by a FIFO'] = async (log) => {
    await rm(log);
    execFileSync('mkfifo', [log]);
  };
}

describe('an audit log taken away from an open sink', () => {
  for (const [how, replace] of Object.entries(REPLACEMENTS)) {
    it(`${how}: the next write is refused with Integrity, not acknowledged into a file nobody reads`, async () => {
      const log = await tempLog();
      const sink = await JsonlAuditSink.open(log, { hmacKey: KEY });
      await sink.write(event(0));
      await replace(log);
      await expect(sink.write(event(1))).rejects.toMatchObject({
        code: 'Integrity',
        message: expect.stringContaining('removed or replaced'),
      });
      // Not "run `keyport audit verify`": of a removed log it only says that it is missing.
      await expect(sink.write(event(2))).rejects.toMatchObject({
        message: expect.not.stringContaining('audit verify'),
      });
      await sink.close();
    });
  }
});

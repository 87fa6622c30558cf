/**
 * Progress of a migration on stderr: a redrawn bar with count, rate and ETA on a terminal;
 * a plain line at most every `everyMs` otherwise (logs of night-time batch jobs).
 */
import type { Writable } from 'node:stream';
import type { MigrateProgress } from './files.js';

function eta(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m}m${Math.ceil(seconds % 60)}s` : `${Math.floor(m / 60)}h${m % 60}m`;
}

export function progressReporter(
  stream: Writable,
  tty: boolean,
  everyMs = 5000,
): {
  update: (p: MigrateProgress) => void;
  finish: () => void;
} {
  const started = Date.now();
  let last = 0;
  let drawn = false;
  const line = (p: MigrateProgress): string => {
    const seconds = (Date.now() - started) / 1000;
    const rate = seconds > 0 ? p.done / seconds : 0;
    const remaining = rate > 0 ? (p.total - p.done) / rate : Number.POSITIVE_INFINITY;
    return `${p.done}/${p.total} files, ${rate.toFixed(1)}/s, ETA ${eta(remaining)} (migrated ${p.migrated}, already ${p.alreadyDone}, skipped ${p.skipped}, failed ${p.failed})`;
  };
  return {
    update(p) {
      const now = Date.now();
      if (tty) {
        if (now - last < 100 && p.done !== p.total) return;
        last = now;
        const width = 24;
        const filled = p.total === 0 ? width : Math.round((p.done / p.total) * width);
        stream.write(`\r[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${line(p)}\u001b[K`);
        drawn = true;
      } else if (now - last >= everyMs || p.done === p.total) {
        last = now;
        stream.write(`migrate: ${line(p)}\n`);
      }
    },
    finish() {
      if (drawn) stream.write('\n');
    },
  };
}

/**
 * Progress of a migration as a plain line on stderr at most every `everyMs`, for logs of
 * unattended runs (stderr not a terminal, no --json). Terminals get a bar and --json gets
 * events, both from ../progress.ts.
 */
import type { Writable } from 'node:stream';
import type { MigrateProgress } from './files.js';

function eta(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m}m${Math.ceil(seconds % 60)}s` : `${Math.floor(m / 60)}h${m % 60}m`;
}

export function progressLines(stream: Writable, everyMs = 5000): (p: MigrateProgress) => void {
  const started = Date.now();
  let last = 0;
  return (p) => {
    const now = Date.now();
    if (now - last < everyMs && p.done !== p.total) return;
    last = now;
    const seconds = (now - started) / 1000;
    const rate = seconds > 0 ? p.done / seconds : 0;
    const remaining = rate > 0 ? (p.total - p.done) / rate : Number.POSITIVE_INFINITY;
    stream.write(
      `migrate: ${p.done}/${p.total} files, ${rate.toFixed(1)}/s, ETA ${eta(remaining)} (migrated ${p.migrated}, already ${p.alreadyDone}, skipped ${p.skipped}, failed ${p.failed})\n`,
    );
  };
}

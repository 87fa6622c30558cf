/**
 * Progress of long commands on stderr, never on stdout:
 * - with `--json`: NDJSON events `{"progress": {...}}` at most twice a second, and a last one;
 * - on a terminal: a live bar (count or bytes, rate, ETA) drawn by cli-progress, loaded only
 *   when a bar is shown (so a piped or scripted run never loads it);
 * - otherwise: silent (migrate keeps its periodic log line, see migrate/progress.ts).
 * `--no-progress` turns all of it off.
 */
import type { Session } from './session.js';

export interface Progress {
  /** `done` so far (bytes or files); `extra` is shown in the JSON event. */
  update(done: number, extra?: Readonly<Record<string, unknown>>): void;
  finish(): void;
}

const NONE: Progress = { update: () => undefined, finish: () => undefined };
const EVENT_EVERY_MS = 500;

export interface ProgressOptions {
  readonly command: string;
  readonly unit: 'bytes' | 'files';
  /** Known total (a regular file's size, the number of files), for percentage and ETA. */
  readonly total?: number | undefined;
  readonly enabled: boolean;
}

function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function jsonProgress(s: Session, o: ProgressOptions): Progress {
  const started = Date.now();
  let last = 0;
  let latest = 0;
  let latestExtra: Readonly<Record<string, unknown>> = {};
  const emit = (): void => {
    const seconds = (Date.now() - started) / 1000;
    const rate = seconds > 0 ? latest / seconds : 0;
    const eta = o.total !== undefined && rate > 0 ? Math.max(0, (o.total - latest) / rate) : undefined;
    s.out.event('progress', {
      command: o.command,
      unit: o.unit,
      done: latest,
      ...(o.total !== undefined ? { total: o.total } : {}),
      ratePerSecond: Math.round(rate * 100) / 100,
      ...(eta !== undefined ? { etaSeconds: Math.round(eta * 10) / 10 } : {}),
      elapsedSeconds: Math.round(seconds * 10) / 10,
      ...latestExtra,
    });
  };
  return {
    update(done, extra) {
      latest = done;
      if (extra !== undefined) latestExtra = extra;
      const now = Date.now();
      if (now - last >= EVENT_EVERY_MS) {
        last = now;
        emit();
      }
    },
    finish: emit,
  };
}

/** The terminal bar. cli-progress is imported here, on first use, and only for a terminal. */
async function terminalBar(s: Session, o: ProgressOptions): Promise<Progress> {
  const { SingleBar } = (await import('cli-progress')).default;
  const bytes = o.unit === 'bytes';
  const total = o.total ?? 0;
  const known = o.total !== undefined && o.total > 0;
  const started = Date.now();
  const bar = new SingleBar(
    {
      stream: s.io.stderr as NodeJS.WritableStream,
      format: known
        ? `${o.command} [{bar}] {percentage}% {shown}/{totalShown} {rate}/s ETA {eta_formatted}`
        : `${o.command} {shown} {rate}/s`,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
      fps: 10,
      barsize: 24,
    },
    undefined,
  );
  const fmt = (n: number): string => (bytes ? humanBytes(n) : String(n));
  bar.start(known ? total : 1, 0, { shown: fmt(0), totalShown: fmt(total), rate: fmt(0) });
  return {
    update(done) {
      const seconds = (Date.now() - started) / 1000;
      bar.update(known ? done : 0, {
        shown: fmt(done),
        totalShown: fmt(total),
        rate: fmt(seconds > 0 ? Math.round(done / seconds) : 0),
      });
    },
    finish() {
      bar.stop();
    },
  };
}

export async function startProgress(s: Session, o: ProgressOptions): Promise<Progress> {
  if (!o.enabled) return NONE;
  if (s.out.json) return jsonProgress(s, o);
  if (s.io.stderrIsTTY) return terminalBar(s, o);
  return NONE;
}

/** Counts the bytes flowing through `source` into `progress`. */
export async function* counted(
  source: AsyncIterable<Uint8Array>,
  progress: Progress,
): AsyncGenerator<Uint8Array> {
  let n = 0;
  for await (const chunk of source) {
    n += chunk.length;
    progress.update(n);
    yield chunk;
  }
}

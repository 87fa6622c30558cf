// Audit-log append benchmark. Run with `pnpm bench` (builds dist first), `--quick` for a small
// run. Writes <repo>/bench-results/audit.json as [{ name, unit, value, baseline, baselineValue,
// ratio, spread }] and prints a table.
//
// What a tamper-evident, fail-closed append costs against a plain durable JSONL logger: the
// baseline serialises each event (JSON.stringify), appends it and fsyncs (one fsync per event,
// as the sink does for the log itself); the sink also checks the event, takes the
// inter-process lock, re-reads the head, MACs and chains the record and replaces the anchor
// (temp file, fsync, rename).
// Rounds alternate sink and baseline so both share the disk's noise; medians with min..max.
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeBenchResults } from '../../../scripts/bench-results.mjs';
import { JsonlAuditSink } from '../dist/index.js';

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 3 : 7;
const SERIAL = quick ? 50 : 300;
const BATCH = quick ? 500 : 3000;
const key = new Uint8Array(32).fill(1);
const dir = mkdtempSync(join(tmpdir(), 'keyport-audit-bench-'));

const event = (i) => ({
  ts: new Date(1_700_000_000_000 + i).toISOString(),
  op: 'encrypt',
  provider: 'local',
  keyUri: `local://keys.kp#key-${i % 8}`,
  keyVersion: '1',
  outcome: 'success',
  errorCode: undefined,
  durationMs: 1.5,
  attempts: 1,
  requestId: undefined,
  contextKeys: ['tenant'],
  contextDigest: 'ab'.repeat(32),
});

/** What a plain JSONL logger writes for an event: the baseline's per-event work. */
const plainLine = (e) => `${JSON.stringify(e)}\n`;

async function timeMs(fn) {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

let n = 0;
async function sinkSerial() {
  const sink = await JsonlAuditSink.open(join(dir, `s${n++}.jsonl`), { hmacKey: key });
  const ms = await timeMs(async () => {
    for (let i = 0; i < SERIAL; i++) await sink.write(event(i));
  });
  await sink.close();
  return ms / SERIAL;
}

async function bareSerial() {
  const fh = await open(join(dir, `b${n++}.jsonl`), 'a', 0o600);
  const ms = await timeMs(async () => {
    for (let i = 0; i < SERIAL; i++) {
      await fh.write(plainLine(event(i)));
      await fh.sync();
    }
  });
  await fh.close();
  return ms / SERIAL;
}

async function sinkConcurrent() {
  const sink = await JsonlAuditSink.open(join(dir, `c${n++}.jsonl`), { hmacKey: key });
  const ms = await timeMs(() => Promise.all(Array.from({ length: BATCH }, (_, i) => sink.write(event(i)))));
  await sink.close();
  return ms / BATCH;
}

async function bareConcurrent() {
  // The same events arriving at once, written as one durable append: the floor for batching.
  const fh = await open(join(dir, `d${n++}.jsonl`), 'a', 0o600);
  const ms = await timeMs(async () => {
    let text = '';
    for (let i = 0; i < BATCH; i++) text += plainLine(event(i));
    await fh.write(text);
    await fh.sync();
  });
  await fh.close();
  return ms / BATCH;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (v, d = 4) => Math.round(v * 10 ** d) / 10 ** d;

const samples = { sinkSerial: [], bareSerial: [], sinkConcurrent: [], bareConcurrent: [] };
for (let r = 0; r < ROUNDS; r++) {
  samples.bareSerial.push(await bareSerial());
  samples.sinkSerial.push(await sinkSerial());
  samples.bareConcurrent.push(await bareConcurrent());
  samples.sinkConcurrent.push(await sinkConcurrent());
}
rmSync(dir, { recursive: true, force: true });

const row = (name, value, baseline, base, concurrency) => ({
  name,
  unit: 'ms/event (lower is better)',
  value: round(median(value)),
  baseline,
  baselineValue: round(median(base)),
  ratio: round(median(value) / median(base), 2),
  spread: {
    value: [round(Math.min(...value)), round(Math.max(...value))],
    baseline: [round(Math.min(...base)), round(Math.max(...base))],
  },
  concurrency,
  // Audit events, not envelope messages: no suite, no frame length.
  suite: null,
  frameLength: null,
});
const results = [
  row(
    `audit append, one event at a time (${SERIAL} events, ${ROUNDS} rounds)`,
    samples.sinkSerial,
    'plain JSONL append + fsync',
    samples.bareSerial,
    1,
  ),
  row(
    `audit append, ${BATCH} events at once (batched under one lock)`,
    samples.sinkConcurrent,
    'plain JSONL append of the same events + one fsync',
    samples.bareConcurrent,
    BATCH,
  ),
];
writeBenchResults('audit', results, quick);
console.table(results.map(({ spread, ...r }) => ({ ...r, spread: JSON.stringify(spread) })));

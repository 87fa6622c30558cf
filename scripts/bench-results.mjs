// Where a bench writes its rows. `<repo>/bench-results/<name>.json`; a `--quick` run
// (KEYPORT_BENCH_QUICK=1, which `pnpm bench --quick` sets for every bench) writes
// `<name>.quick.json` instead — its figures mean nothing and must never replace real ones — and
// KEYPORT_BENCH_RESULTS_DIR puts the files elsewhere (the CI test that runs every bench at the
// quick size does, so a developer's results stay as they were). Shared by every package's bench.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The file for the rows named `name` (its directory created).
 * @param {string} name
 * @param {boolean} [quick]
 * @returns {string}
 */
export function benchResultsFile(name, quick = process.env.KEYPORT_BENCH_QUICK === '1') {
  const dir = process.env.KEYPORT_BENCH_RESULTS_DIR || join(repoRoot, 'bench-results');
  mkdirSync(dir, { recursive: true });
  return join(dir, `${name}${quick ? '.quick' : ''}.json`);
}

/**
 * What every row must name besides its figures: the concurrency it ran at (callers, jobs or
 * threads; 1 for one at a time), and the envelope algorithm suite and frame length its messages
 * used — `null` for both when the row measures no envelope message (an adapter call, an audit
 * append). Node's version is added here.
 */
const REQUIRED = ['concurrency', 'suite', 'frameLength'];

/**
 * Throws when a row leaves out what every row must name (see REQUIRED), so a bench that forgets
 * fails in CI's quick run, before anyone reads its figures.
 * @param {string} name
 * @param {Array<Record<string, unknown>>} rows
 */
export function checkBenchRows(name, rows) {
  for (const row of rows) {
    const missing = REQUIRED.filter((k) => !(k in row));
    const c = row.concurrency;
    const s = row.suite;
    const f = row.frameLength;
    const bad =
      missing.length > 0
        ? `leaves out ${missing.join(', ')}`
        : !Number.isSafeInteger(c) || c < 1
          ? `has concurrency ${JSON.stringify(c)} (a positive integer)`
          : s !== null && (typeof s !== 'string' || !/^0x[0-9a-f]{4}$/.test(s))
            ? `has suite ${JSON.stringify(s)} (e.g. '0x0478', or null)`
            : f !== null && (!Number.isSafeInteger(f) || f < 1)
              ? `has frameLength ${JSON.stringify(f)} (a positive integer, or null)`
              : undefined;
    if (bad !== undefined) throw new Error(`bench results ${name}: row "${String(row.name)}" ${bad}`);
  }
}

/**
 * Writes `rows` as the results named `name` (checked by checkBenchRows), each row naming the
 * Node version that produced it (rows that already say are left as they are). Returns the file.
 * @param {string} name
 * @param {Array<Record<string, unknown>>} rows
 * @param {boolean} [quick]
 * @returns {string}
 */
export function writeBenchResults(name, rows, quick) {
  checkBenchRows(name, rows);
  const file = benchResultsFile(name, quick);
  const named = rows.map((row) => ('node' in row ? row : { ...row, node: process.version }));
  writeFileSync(file, `${JSON.stringify(named, null, 2)}\n`);
  return file;
}

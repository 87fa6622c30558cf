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
 * Writes `rows` as the results named `name`, each row naming the Node version that produced it
 * (rows that already say are left as they are). Returns the file.
 * @param {string} name
 * @param {Array<Record<string, unknown>>} rows
 * @param {boolean} [quick]
 * @returns {string}
 */
export function writeBenchResults(name, rows, quick) {
  const file = benchResultsFile(name, quick);
  const named = rows.map((row) => ('node' in row ? row : { ...row, node: process.version }));
  writeFileSync(file, `${JSON.stringify(named, null, 2)}\n`);
  return file;
}

#!/usr/bin/env node
// Import-time benchmark: how long a fresh Node process takes to import each published package's
// entry point (its built `exports` target), beside a bare `node -e ''` measured in the same run.
// Runs are interleaved (bare, package, bare, package, ...) so load on the machine hits both sides
// alike; each side's median and its 10th-90th percentile spread are reported. The import cost is
// the difference of the medians, compared with the goals: core <= 40 ms, each adapter <= 120 ms.
// Writes bench-results/import.json as [{ name, unit, value, baseline, baselineValue, ratio, ... }].
//
// Usage: node scripts/bench-import.mjs [--runs N]   (builds the packages first if needed)
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeBenchResults } from './bench-results.mjs';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const runsArg = process.argv.indexOf('--runs');
const runs =
  runsArg === -1 ? Number(process.env.KEYPORT_BENCH_IMPORT_RUNS ?? 15) : Number(process.argv[runsArg + 1]);
if (!Number.isInteger(runs) || runs < 3) throw new Error('--runs must be an integer >= 3');

const targets = [
  { dir: 'packages/core', goalMs: 40 },
  { dir: 'adapters/local', goalMs: 120 },
  { dir: 'adapters/aws-kms', goalMs: 120 },
  { dir: 'adapters/azure-keyvault', goalMs: 120 },
  { dir: 'adapters/gcp-kms', goalMs: 120 },
  { dir: 'adapters/vault-transit', goalMs: 120 },
  { dir: 'adapters/pkcs11', goalMs: 120 },
  { dir: 'packages/envelope', goalMs: undefined },
];

function entryOf(dir) {
  const pkg = JSON.parse(readFileSync(join(repoRoot, dir, 'package.json'), 'utf8'));
  const entry = join(repoRoot, dir, pkg.exports['.'].import);
  return { name: pkg.name, entry };
}

if (targets.some((t) => !existsSync(entryOf(t.dir).entry))) {
  console.log('building the packages first (pnpm build)');
  execFileSync('npx', ['-y', 'pnpm@10.20.0', 'build', '--output-logs=errors-only'], {
    cwd: repoRoot,
    stdio: 'inherit',
  });
}

/** Wall time of one fresh `node` process running `args`, in milliseconds. */
function timeProcess(args) {
  const started = process.hrtime.bigint();
  const child = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (child.status !== 0) throw new Error(`node ${args.join(' ')} failed: ${child.stderr}`);
  return ms;
}

const quantile = (sorted, q) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];
const round = (x) => Math.round(x * 10) / 10;
function summary(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  return { median: quantile(sorted, 0.5), p10: quantile(sorted, 0.1), p90: quantile(sorted, 0.9) };
}

const bare = ['-e', ''];
const results = [];
console.log(`import time, ${runs} fresh processes per side, Node ${process.version}`);
for (const target of targets) {
  const { name, entry } = entryOf(target.dir);
  const load = ['--input-type=module', '-e', `await import(${JSON.stringify(pathToFileURL(entry).href)})`];
  timeProcess(bare); // warm the file system cache for both sides
  timeProcess(load);
  const base = [];
  const pkg = [];
  for (let i = 0; i < runs; i++) {
    base.push(timeProcess(bare));
    pkg.push(timeProcess(load));
  }
  const b = summary(base);
  const p = summary(pkg);
  const importMs = p.median - b.median;
  const ok = target.goalMs === undefined ? undefined : importMs <= target.goalMs;
  results.push({
    name: `import ${name}`,
    unit: 'ms',
    value: round(p.median),
    baseline: "node -e ''",
    baselineValue: round(b.median),
    ratio: Math.round((p.median / b.median) * 100) / 100,
    importMs: round(importMs),
    goalMs: target.goalMs ?? null,
    // One import in one process; no envelope message.
    concurrency: 1,
    suite: null,
    frameLength: null,
    meetsGoal: ok ?? null,
    spread: {
      valueP10: round(p.p10),
      valueP90: round(p.p90),
      baselineP10: round(b.p10),
      baselineP90: round(b.p90),
    },
    runs,
    node: process.version,
  });
  const goal = target.goalMs === undefined ? '' : ` (goal <= ${target.goalMs} ms: ${ok ? 'met' : 'MISSED'})`;
  console.log(
    `${name.padEnd(26)} ${round(p.median)} ms [${round(p.p10)}-${round(p.p90)}] vs bare ${round(b.median)} ms [${round(b.p10)}-${round(b.p90)}]: import ${round(importMs)} ms, x${results.at(-1).ratio}${goal}`,
  );
}

console.log(`wrote ${writeBenchResults('import', results)}`);

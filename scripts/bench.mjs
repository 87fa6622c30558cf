#!/usr/bin/env node
// `pnpm bench [--quick]`: every workspace package's `bench` script through turbo, one at a time
// with the emulators up, then the import-time bench (scripts/bench-import.mjs).
//
// `--quick` runs every bench at a small size (CI keeps them working; their figures mean nothing).
// It reaches each bench two ways, because turbo hands the arguments after `--` to every task
// alike and vitest refuses an option it does not know:
// - benches that are plain node scripts get `--quick` on their command line
//   (`turbo run bench --filter=... -- --quick`);
// - every bench, vitest-run ones included, gets KEYPORT_BENCH_QUICK=1 in its environment
//   (turbo.json passes KEYPORT_* through).
// The import bench runs 3 processes per side instead of 15.
//
// Usage: node scripts/bench.mjs [--quick] [--print-plan]
//   --print-plan prints the commands as JSON instead of running them (used by a test).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const known = new Set(['--quick', '--print-plan', '--under-emulators']);
const unknown = args.filter((a) => !known.has(a));
if (unknown.length > 0) {
  console.error(`unknown option ${unknown[0]}; usage: pnpm bench [--quick]`);
  process.exit(2);
}
const quick = args.includes('--quick');

/** Workspace package directories, from pnpm-workspace.yaml's `dir` and `dir/*` entries. */
function workspaceDirs() {
  const yaml = readFileSync(join(root, 'pnpm-workspace.yaml'), 'utf8');
  const dirs = [];
  for (const m of yaml.matchAll(/^\s*-\s*['"]?([^'"\s]+)['"]?\s*$/gm)) {
    const pattern = m[1];
    if (pattern.endsWith('/*')) {
      const base = join(root, pattern.slice(0, -2));
      if (!existsSync(base)) continue;
      for (const e of readdirSync(base, { withFileTypes: true }))
        if (e.isDirectory()) dirs.push(join(base, e.name));
    } else {
      dirs.push(join(root, pattern));
    }
  }
  return dirs;
}

/** Packages with a `bench` script, split by whether the script's last command is vitest. */
function benchPackages() {
  const node = [];
  const vitest = [];
  for (const dir of workspaceDirs()) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8'));
    const script = pkg.scripts?.bench;
    if (typeof script !== 'string') continue;
    const last = script.split('&&').at(-1).trim();
    (/^vitest\b/.test(last) ? vitest : node).push(pkg.name);
  }
  return { node: node.sort(), vitest: vitest.sort() };
}

function plan() {
  const { node, vitest } = benchPackages();
  const env = quick ? { KEYPORT_BENCH_QUICK: '1' } : {};
  const turbo = (names, extra) => [
    'turbo',
    'run',
    'bench',
    '--concurrency=1',
    ...names.map((n) => `--filter=${n}`),
    ...extra,
  ];
  const steps = [];
  if (quick) {
    if (node.length > 0) steps.push({ command: turbo(node, ['--', '--quick']), env });
    if (vitest.length > 0) steps.push({ command: turbo(vitest, []), env });
  } else {
    steps.push({ command: turbo([...node, ...vitest], []), env });
  }
  steps.push({
    command: ['node', 'scripts/bench-import.mjs', ...(quick ? ['--runs', '3'] : [])],
    env,
    emulators: false,
  });
  return steps;
}

function run(step) {
  const [command, ...rest] = step.command;
  const r = spawnSync(command === 'node' ? process.execPath : command, rest, {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, ...step.env },
  });
  if (r.error !== undefined) throw r.error;
  return r.status ?? 1;
}

if (args.includes('--print-plan')) {
  process.stdout.write(`${JSON.stringify(plan())}\n`);
  process.exit(0);
}
const steps = plan();
if (!args.includes('--under-emulators')) {
  // The package benches run under one emulator lease (scripts/with-emulators.mjs); the
  // import bench needs none.
  const inner = [
    'scripts/with-emulators.mjs',
    process.execPath,
    fileURLToPath(import.meta.url),
    '--under-emulators',
  ];
  if (quick) inner.push('--quick');
  const r = spawnSync(process.execPath, inner, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
  const last = steps.at(-1);
  process.exit(run(last));
}
for (const step of steps.filter((s) => s.emulators !== false)) {
  const status = run(step);
  if (status !== 0) process.exit(status);
}

#!/usr/bin/env node
/**
 * `pnpm fuzz [runs]`: runs every vitest test file whose name contains `fuzz`, in every
 * workspace project, with KEYPORT_FUZZ_RUNS=<runs> (100000 by default). Each fast-check
 * property in those files takes its run count from that variable, so CI runs them small and
 * this runs them at any size. Exits with vitest's status.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const arg = process.argv[2] ?? '100000';
if (!/^[1-9][0-9]{0,9}$/.test(arg)) {
  console.error(`usage: pnpm fuzz [runs]   (runs: a positive integer, got ${JSON.stringify(arg)})`);
  process.exit(2);
}
const runs = Number(arg);

/** Test files named *fuzz*.test.ts under each project's test/ folder (as vitest.config.ts finds projects). */
function fuzzFiles() {
  const projects = ['packages', 'adapters', 'examples']
    .flatMap((r) =>
      existsSync(join(root, r)) ? readdirSync(join(root, r)).map((d) => join(root, r, d)) : [],
    )
    .concat([join(root, 'conformance'), join(root, 'conformance/servers')]);
  const found = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir)) {
      if (entry === 'node_modules') continue;
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (entry.includes('fuzz') && entry.endsWith('.test.ts')) found.push(relative(root, path));
    }
  };
  for (const project of projects) if (existsSync(join(project, 'test'))) walk(join(project, 'test'));
  return found.sort();
}

const files = fuzzFiles();
if (files.length === 0) {
  console.error('no fuzz test files found (test files whose name contains "fuzz")');
  process.exit(1);
}
console.log(`fuzz: ${runs} runs per property, ${files.length} file(s):\n  ${files.join('\n  ')}`);
const started = Date.now();
const vitest = join(root, 'node_modules/.bin/vitest');
const child = spawn(vitest, ['run', '--testTimeout=86400000', ...files], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, KEYPORT_FUZZ_RUNS: String(runs) },
});
child.on('exit', (code, signal) => {
  console.log(
    `fuzz: finished in ${((Date.now() - started) / 1000).toFixed(1)} s (${signal ?? `exit ${code}`})`,
  );
  process.exit(code ?? 1);
});

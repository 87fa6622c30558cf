#!/usr/bin/env node
// Runs the suites that need no emulator (vitest.node-matrix.config.ts) under each given Node
// line, fetched from the npm registry's `node` package (`npx -y node@<major>`), one JSON report
// per line in test-results/vitest-node<major>.json for scripts/test-summary.mjs to count.
// The native pkcs11js addon is Node-API, so the build from `pnpm install` serves every line.
//
// Usage: node scripts/node-matrix.mjs 22 24 26
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const majors = process.argv.slice(2);
if (majors.length === 0 || majors.some((m) => !/^\d+$/.test(m))) {
  console.error('usage: node scripts/node-matrix.mjs <major>...');
  process.exit(2);
}

let failed = false;
for (const major of majors) {
  const report = join(repoRoot, `test-results/vitest-node${major}.json`);
  rmSync(report, { force: true });
  let node;
  try {
    node = execFileSync('npx', ['-y', `node@${major}`, '-p', 'process.execPath'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }).trim();
  } catch {
    console.error(`node-matrix: could not fetch node@${major} from the npm registry`);
    failed = true;
    continue;
  }
  const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
  console.log(`\n=== Node ${version}: suites without emulators ===`);
  const started = Date.now();
  // This Node first on PATH, so anything a test spawns as `node` is the same line.
  const run = spawnSync(
    node,
    [join(repoRoot, 'node_modules/vitest/vitest.mjs'), 'run', '--config', 'vitest.node-matrix.config.ts'],
    {
      cwd: repoRoot,
      stdio: 'inherit',
      env: {
        ...process.env,
        PATH: `${dirname(node)}${delimiter}${process.env.PATH ?? ''}`,
        KEYPORT_VITEST_JSON: report,
      },
    },
  );
  console.log(`=== Node ${version}: exit ${run.status}, ${Math.round((Date.now() - started) / 1000)} s ===`);
  if (run.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);

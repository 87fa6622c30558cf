#!/usr/bin/env node
// Prints "N passed, N failed[, N skipped]" from vitest's JSON report and exits non-zero when
// anything failed or nothing ran. Usage: node scripts/test-summary.mjs <report.json> <test-exit-code>
import { existsSync, readFileSync } from 'node:fs';

const [file = 'test-results/vitest.json', exitCode = '0'] = process.argv.slice(2);
if (!existsSync(file)) {
  console.log('no vitest report was written: the test command failed before tests ran');
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const report = JSON.parse(readFileSync(file, 'utf8'));
let passed = 0;
let failed = 0;
let skipped = 0;
for (const suite of report.testResults ?? []) {
  for (const t of suite.assertionResults ?? []) {
    if (t.status === 'passed') passed++;
    else if (t.status === 'failed') failed++;
    else skipped++;
  }
  // A file that failed to load has no assertions but is a failure.
  if (suite.status === 'failed' && (suite.assertionResults ?? []).every((t) => t.status !== 'failed'))
    failed++;
}
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || passed === 0 || exitCode !== '0' ? 1 : 0);

#!/usr/bin/env node
// Prints "N passed, N failed[, N skipped]" over one or more vitest JSON reports (one line per
// report first, then the total as the last line) and exits non-zero when anything failed,
// nothing ran, a report is missing, or the given exit code is not 0.
// Usage: node scripts/test-summary.mjs <report.json> <exit-code> [more-report.json...]
import { existsSync, readFileSync } from 'node:fs';

const [first = 'test-results/vitest.json', exitCode = '0', ...more] = process.argv.slice(2);
const files = [first, ...more];

function count(file) {
  const tally = { passed: 0, failed: 0, skipped: 0 };
  if (!existsSync(file)) {
    tally.failed = 1; // the run failed before its tests ran
    return { tally, missing: true };
  }
  const report = JSON.parse(readFileSync(file, 'utf8'));
  for (const suite of report.testResults ?? []) {
    for (const t of suite.assertionResults ?? []) {
      if (t.status === 'passed') tally.passed++;
      else if (t.status === 'failed') tally.failed++;
      else tally.skipped++;
    }
    // A file that failed to load has no assertions but is a failure.
    if (suite.status === 'failed' && (suite.assertionResults ?? []).every((t) => t.status !== 'failed'))
      tally.failed++;
  }
  return { tally, missing: false };
}

const line = (t) => `${t.passed} passed, ${t.failed} failed${t.skipped > 0 ? `, ${t.skipped} skipped` : ''}`;
const total = { passed: 0, failed: 0, skipped: 0 };
for (const file of files) {
  const { tally, missing } = count(file);
  if (files.length > 1 || missing)
    console.log(
      `${file}: ${missing ? 'no vitest report was written: the run failed before tests ran; ' : ''}${line(tally)}`,
    );
  total.passed += tally.passed;
  total.failed += tally.failed;
  total.skipped += tally.skipped;
}
console.log(line(total));
process.exit(total.failed > 0 || total.passed === 0 || exitCode !== '0' ? 1 : 0);

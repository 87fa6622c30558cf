#!/usr/bin/env node
// Prints "N passed, N failed[, N skipped]" over one or more vitest JSON reports (one line per
// report first, then the total as the last line) and exits non-zero when anything failed,
// nothing ran, a report is missing, or the given exit code is not 0. Every failed test is named
// (file, full title, first line of its message) above the tally, so that a CI log that keeps only
// its tail still says what failed.
// Usage: node scripts/test-summary.mjs <report.json> <exit-code> [more-report.json...]
import { existsSync, readFileSync } from 'node:fs';
import { relative } from 'node:path';

const [first = 'test-results/vitest.json', exitCode = '0', ...more] = process.argv.slice(2);
const files = [first, ...more];

const firstLine = (messages) =>
  String(messages?.[0] ?? '')
    .split('\n')
    .find((l) => l.trim() !== '')
    ?.trim()
    .slice(0, 300) ?? '';

function count(file) {
  const tally = { passed: 0, failed: 0, skipped: 0 };
  const failures = [];
  if (!existsSync(file)) {
    tally.failed = 1; // the run failed before its tests ran
    return { tally, failures, missing: true };
  }
  const report = JSON.parse(readFileSync(file, 'utf8'));
  for (const suite of report.testResults ?? []) {
    const where = relative(process.cwd(), suite.name ?? '?');
    for (const t of suite.assertionResults ?? []) {
      if (t.status === 'passed') tally.passed++;
      else if (t.status === 'failed') {
        tally.failed++;
        failures.push(`${where} > ${t.fullName ?? t.title}: ${firstLine(t.failureMessages)}`);
      } else tally.skipped++;
    }
    // A file that failed to load has no assertions but is a failure.
    if (suite.status === 'failed' && (suite.assertionResults ?? []).every((t) => t.status !== 'failed')) {
      tally.failed++;
      failures.push(`${where} (the file failed outside its tests): ${firstLine([suite.message])}`);
    }
  }
  return { tally, failures, missing: false };
}

const line = (t) => `${t.passed} passed, ${t.failed} failed${t.skipped > 0 ? `, ${t.skipped} skipped` : ''}`;
const total = { passed: 0, failed: 0, skipped: 0 };
for (const file of files) {
  const { tally, failures, missing } = count(file);
  for (const failure of failures) console.log(`FAILED ${file}: ${failure}`);
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

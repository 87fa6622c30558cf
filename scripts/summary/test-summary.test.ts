// scripts/test-summary.mjs, the last lines of every CI log: the tally `.ci/run` ends with, its exit
// status, and the name of every failed test (a CI log may keep only its tail, and a failure that
// cannot be named cannot be mended).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, test } from 'vitest';

const script = resolve(dirname(fileURLToPath(import.meta.url)), '../test-summary.mjs');
const dir = mkdtempSync(join(tmpdir(), 'keyport-summary-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function report(name: string, testResults: unknown[]): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify({ testResults }));
  return file;
}

function summary(...args: string[]): { status: number | null; lines: string[] } {
  const run = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8' });
  return { status: run.status, lines: run.stdout.trim().split('\n') };
}

const passing = report('passing.json', [
  { name: '/x/a.test.ts', status: 'passed', assertionResults: [{ status: 'passed', fullName: 'a works' }] },
]);

test('a green run: the tally is the last line and the exit status is 0', () => {
  expect(summary(passing, '0')).toEqual({ status: 0, lines: ['1 passed, 0 failed'] });
});

test('every failed test is named with the first line of its message, above the tally', () => {
  const failing = report('failing.json', [
    {
      name: '/x/b.test.ts',
      status: 'failed',
      assertionResults: [
        { status: 'passed', fullName: 'b one' },
        {
          status: 'failed',
          fullName: 'b two',
          failureMessages: ['\nAssertionError: expected 1 to be 2\n    at x'],
        },
        { status: 'skipped', fullName: 'b three' },
      ],
    },
    { name: '/x/c.test.ts', status: 'failed', message: 'SyntaxError: no\nmore', assertionResults: [] },
  ]);
  const { status, lines } = summary(passing, '0', failing);
  expect(status).toBe(1);
  expect(lines).toEqual([
    `${passing}: 1 passed, 0 failed`,
    expect.stringMatching(
      /^FAILED .*failing\.json: .*b\.test\.ts > b two: AssertionError: expected 1 to be 2$/,
    ),
    expect.stringMatching(
      /^FAILED .*failing\.json: .*c\.test\.ts \(the file failed outside its tests\): SyntaxError: no$/,
    ),
    `${failing}: 1 passed, 2 failed, 1 skipped`,
    '2 passed, 2 failed, 1 skipped',
  ]);
});

test('a missing report, an empty run or a non-zero exit code is a failure', () => {
  expect(summary(join(dir, 'absent.json'), '0').status).toBe(1);
  expect(summary(join(dir, 'absent.json'), '0').lines[0]).toMatch(/no vitest report was written/);
  expect(summary(report('empty.json', []), '0')).toEqual({ status: 1, lines: ['0 passed, 0 failed'] });
  expect(summary(passing, '1').status).toBe(1);
});

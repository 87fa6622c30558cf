/**
 * `pnpm bench --quick` in CI: every package's bench and the import bench run at a small size,
 * with the emulators up as `pnpm bench` has them, and each writes rows of the agreed shape
 * `{ name, unit, value, baseline, baselineValue, ratio }` naming the Node version, concurrency,
 * suite and frame length. No timing is
 * asserted (a quick run's figures mean nothing). The rows go to a temp dir
 * (KEYPORT_BENCH_RESULTS_DIR), never over a developer's real results.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { checkBenchRows } from '../bench-results.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'keyport-bench-quick-all-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

/** One results file per bench (the CLI's file migration and the object migration apart). */
const BENCHES = [
  'audit',
  'aws-kms',
  'azure-keyvault',
  'cli',
  'cli-files',
  'core-call-path',
  'envelope',
  'gcp-kms',
  'gcp-kms-cpu',
  'import',
  'migrate',
  'object-migrate',
  'pkcs11',
  'policy',
  'vault-transit',
];

it('every bench runs at the quick size and writes its rows, none over the real results', () => {
  // As a user runs it: turbo needs the package manager that `pnpm bench` puts on PATH.
  const run = spawnSync('npx', ['-y', 'pnpm@10.20.0', 'bench', '--quick'], {
    cwd: root,
    env: { ...process.env, KEYPORT_BENCH_RESULTS_DIR: out },
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    // Below the test's own limit: a child that hangs (Node can deadlock in exit,
    // nodejs/node#54918) fails this test instead of blocking the synchronous call, and so the
    // whole run, forever.
    timeout: 1_440_000,
    killSignal: 'SIGKILL',
  });
  expect(run.status, `${run.stdout.slice(-3000)}\n${run.stderr.slice(-3000)}`).toBe(0);
  expect(readdirSync(out).sort()).toEqual(BENCHES.map((b) => `${b}.quick.json`).sort());
  for (const bench of BENCHES) {
    const rows = JSON.parse(readFileSync(join(out, `${bench}.quick.json`), 'utf8')) as Array<
      Record<string, unknown>
    >;
    expect(rows.length, bench).toBeGreaterThan(0);
    for (const r of rows) {
      const where = `${bench}: ${String(r.name)}`;
      expect(typeof r.name, where).toBe('string');
      expect(typeof r.unit, where).toBe('string');
      expect(Number.isFinite(r.value), where).toBe(true);
      expect(typeof r.baseline, where).toBe('string');
      expect(typeof r.baselineValue, where).toBe('number');
      expect(r.ratio === null || typeof r.ratio === 'number', where).toBe(true);
      expect(r.node, where).toMatch(/^v\d+\./);
      // On a Node line keyport supports (a fresh machine's Node 20 is swapped for 24, as for tests).
      expect(Number(String(r.node).slice(1).split('.')[0]), where).toBeGreaterThanOrEqual(22);
      // What the bench ran at (scripts/bench-results.mjs refuses rows without these).
      expect(Number.isSafeInteger(r.concurrency) && (r.concurrency as number) >= 1, where).toBe(true);
      expect(r.suite === null || /^0x[0-9a-f]{4}$/.test(String(r.suite)), where).toBe(true);
      expect(r.frameLength === null || Number.isSafeInteger(r.frameLength), where).toBe(true);
    }
  }
}, 1_500_000);

it('the results writer refuses a row that does not say what it ran at', () => {
  const row = { name: 'r', unit: 'ms', value: 1, baseline: 'b', baselineValue: 1, ratio: 1 };
  const ok = { ...row, concurrency: 1, suite: null, frameLength: null };
  expect(() => checkBenchRows('x', [ok, { ...ok, suite: '0x0478', frameLength: 1024 }])).not.toThrow();
  expect(() => checkBenchRows('x', [row])).toThrow(/row "r" leaves out concurrency, suite, frameLength/);
  expect(() => checkBenchRows('x', [{ ...ok, concurrency: 0 }])).toThrow(/concurrency 0/);
  expect(() => checkBenchRows('x', [{ ...ok, concurrency: '2' }])).toThrow(/concurrency "2"/);
  expect(() => checkBenchRows('x', [{ ...ok, suite: 1144 }])).toThrow(/suite 1144/);
  expect(() => checkBenchRows('x', [{ ...ok, frameLength: Number.NaN }])).toThrow(/frameLength null/);
  expect(() => checkBenchRows('x', [{ ...ok, frameLength: 0.5 }])).toThrow(/frameLength 0.5/);
});

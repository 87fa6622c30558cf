import { join } from 'node:path';
import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

// The suites that need no emulator or test server, run by `.ci/run` once per supported Node line
// (`node scripts/node-matrix.mjs`). No global setup: nothing is started, and a test here that
// asked for a target would fail rather than skip.
const offline: Record<string, readonly string[]> = {
  core: ['test/**/*.test.ts'],
  envelope: ['test/**/*.test.ts'],
  local: ['test/**/*.test.ts'],
  // The SHA-256 it gives the SDK differs by Node line (Node 24/25 only); stubbed, no emulator.
  'aws-kms': ['test/sha256.test.ts'],
  cli: [
    'test/admin.test.ts',
    'test/audit.test.ts',
    'test/bin.test.ts',
    'test/config.test.ts',
    'test/context-flags.test.ts',
    'test/crypto.test.ts',
    'test/exit-codes.test.ts',
    'test/json-contract.test.ts',
    'test/keys.test.ts',
    'test/lazy-loading.test.ts',
    'test/migrate.test.ts',
    'test/migrate-dir-sync.test.ts',
    'test/progress.test.ts',
  ],
  conformance: [
    'test/local.conformance.test.ts',
    'test/capability-plan.test.ts',
    'test/helpers.test.ts',
    'test/matrix.test.ts',
    'test/sabotage.test.ts',
  ],
  quickstart: ['test/**/*.test.ts'],
  'test-servers-in-your-tests': ['test/**/*.test.ts'],
  opentelemetry: ['test/**/*.test.ts'],
};
// Files of those suites that do need a target (they run in the main suite, under the harness).
const needsTarget: Record<string, readonly string[]> = {
  // The Python, Java and Go ESDKs (targets `esdk-python`, `esdk-java`, `esdk-go`).
  envelope: ['test/interop-esdk-languages.test.ts', 'test/interop-empty-context-key.test.ts'],
};
const folder = (name: string): string =>
  name === 'conformance'
    ? 'conformance'
    : ['core', 'envelope', 'cli'].includes(name)
      ? `packages/${name}`
      : name === 'local' || name === 'aws-kms'
        ? `adapters/${name}`
        : `examples/${name}`;

const repoRoot = base.root ?? process.cwd();
// One JSON report per Node line, so the CI summary can count every run.
const report = process.env.KEYPORT_VITEST_JSON ?? join(repoRoot, 'test-results/vitest-node-matrix.json');

export default defineConfig({
  ...base,
  test: {
    ...base.test,
    reporters: ['default', ['json', { outputFile: report }]],
    globalSetup: [],
    projects: Object.entries(offline).map(([name, include]) => ({
      extends: true,
      test: {
        name,
        root: join(repoRoot, folder(name)),
        include: [...include],
        exclude: ['**/node_modules/**', ...(needsTarget[name] ?? [])],
      },
    })),
  },
});

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The checks run by `.ci/run` after the main run: the consumer test (scripts/consumer: pack,
// publint, attw, install with npm and pnpm, compile and run), the release dry run
// (scripts/release) and `pnpm bench --quick` (scripts/bench: every bench at a small size). Their
// JSON report counts in the CI summary.
const repoRoot = dirname(fileURLToPath(import.meta.url));

export default defineConfig({
  root: repoRoot,
  test: {
    name: 'packaging',
    include: ['scripts/*/*.test.ts'],
    // One file at a time: the consumer test packs the packages' dist while the bench run
    // (scripts/bench) builds them through turbo; they must not overlap.
    fileParallelism: false,
    reporters: [
      'default',
      [
        'json',
        {
          outputFile: process.env.KEYPORT_VITEST_JSON ?? join(repoRoot, 'test-results/vitest-packaging.json'),
        },
      ],
    ],
    testTimeout: 300_000,
    hookTimeout: 900_000,
  },
});

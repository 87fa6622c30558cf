import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The packaging checks run by `.ci/run` after the main run: the consumer test (scripts/consumer:
// pack, publint, attw, install with npm and pnpm, compile and run) and the release dry run
// (scripts/release). Their JSON report counts in the CI summary.
const repoRoot = dirname(fileURLToPath(import.meta.url));

export default defineConfig({
  root: repoRoot,
  test: {
    name: 'packaging',
    include: ['scripts/*/*.test.ts'],
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

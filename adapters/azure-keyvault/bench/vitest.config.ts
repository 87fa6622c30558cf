// Runs the benchmark as a single vitest file so TypeScript workspace sources resolve without a
// build (the same "source" condition the test projects use).
import { defineConfig } from 'vitest/config';

const conditions = ['source', 'node', 'import', 'module', 'default'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['node'] } },
  test: {
    root: new URL('..', import.meta.url).pathname,
    include: ['bench/azure-keyvault.bench.ts'],
    testTimeout: 600_000,
    hookTimeout: 120_000,
  },
});

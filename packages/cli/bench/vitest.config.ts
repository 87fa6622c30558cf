// Runs the migration benchmark as one vitest file, so workspace TypeScript sources resolve
// without a build (the "source" condition the test projects use).
import { defineConfig } from 'vitest/config';

const conditions = ['source', 'node', 'import', 'default'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['node'] } },
  test: {
    root: new URL('..', import.meta.url).pathname,
    include: ['bench/migrate.bench.ts', 'bench/startup.bench.ts', 'bench/file-throughput.bench.ts'],
    testTimeout: 1_800_000,
    hookTimeout: 120_000,
  },
});

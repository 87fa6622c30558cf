// The benchmark runs as one vitest file so workspace TypeScript sources resolve without a build.
import { defineConfig } from 'vitest/config';

const conditions = ['source', 'node', 'import', 'module', 'default'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['node'] } },
  test: {
    root: new URL('..', import.meta.url).pathname,
    include: ['bench/adapter-overhead.ts'],
    testTimeout: 600_000,
  },
});

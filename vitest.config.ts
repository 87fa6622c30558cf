import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

// One vitest project per workspace package that has tests, named after its folder.
const roots = ['packages', 'adapters', 'examples'];
const dirs = [
  ...roots.flatMap((r) => (existsSync(r) ? readdirSync(r).map((d) => join(r, d)) : [])),
  'conformance',
  'conformance/servers',
].filter((d) => existsSync(join(d, 'test')));

// Tests import workspace packages from source (the "source" export condition), so no build is
// needed before `vitest run`.
const conditions = ['source', 'node', 'import', 'default'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['node'] } },
  test: {
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
    globalSetup: existsSync('conformance/harness/global-setup.ts')
      ? [join(process.cwd(), 'conformance/harness/global-setup.ts')]
      : [],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    projects: dirs.map((dir) => ({
      extends: true,
      test: {
        name: dir.replace(/^(packages|adapters|examples)\//, ''),
        root: dir,
        include: ['test/**/*.test.ts'],
      },
    })),
  },
});

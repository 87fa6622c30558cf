import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Paths are taken from this file's folder, not the working directory, so a package's own
// `test` script (`vitest run --config ../../vitest.config.ts --project core`) sees the same
// projects as a run from the root.
const repoRoot = dirname(fileURLToPath(import.meta.url));
const at = (...parts: string[]): string => join(repoRoot, ...parts);

// One vitest project per workspace package that has tests, named after its folder.
const roots = ['packages', 'adapters', 'examples'];
const dirs = [
  ...roots.flatMap((r) => (existsSync(at(r)) ? readdirSync(at(r)).map((d) => join(r, d)) : [])),
  'conformance',
  'conformance/servers',
].filter((d) => existsSync(at(d, 'test')));

// Tests import workspace packages from source (the "source" export condition), so no build is
// needed before `vitest run`.
const conditions = ['source', 'node', 'import', 'default'];

export default defineConfig({
  root: repoRoot,
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['node'] } },
  test: {
    reporters: ['default', ['json', { outputFile: at('test-results/vitest.json') }]],
    globalSetup: existsSync(at('conformance/harness/global-setup.ts'))
      ? [at('conformance/harness/global-setup.ts')]
      : [],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    projects: dirs.map((dir) => ({
      extends: true,
      test: {
        name: dir.replace(/^(packages|adapters|examples)\//, ''),
        root: at(dir),
        include: ['test/**/*.test.ts'],
      },
    })),
  },
});

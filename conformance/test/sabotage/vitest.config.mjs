// Config for the child run in sabotage.test.ts: only the sabotaged suites, no emulator setup.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const conditions = ['source', 'node', 'import', 'module', 'default'];
export default {
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['node'] } },
  test: {
    root: join(dirname(fileURLToPath(import.meta.url)), '../..'),
    include: ['test/sabotage/*.suite.ts'],
    testTimeout: 30_000,
  },
};

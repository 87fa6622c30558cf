/**
 * The `keyport` bin's bundle: dist/keyport.mjs, one ESM file holding the CLI's own modules and
 * the two libraries every command needs (commander, zod), so a start resolves and compiles one
 * file instead of a hundred. Everything else stays an external import, resolved at run time from
 * node_modules as before:
 * - the @keyport/* packages: adapters loaded on first use import @keyport/core themselves, and a
 *   second copy of core inside the bundle would break `instanceof KeyportError` across the two;
 * - provider SDKs, native modules and optional pieces (cli-progress, yaml, gRPC, google-auth):
 *   imported lazily by the source, so `--help` and a local encrypt load none of them.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'rolldown';

/** Bare specifiers bundled into the bin; any other bare specifier stays external. */
const BUNDLED = /^(commander|zod)(\/|$)/;

export default defineConfig({
  input: { keyport: fileURLToPath(new URL('./src/main.ts', import.meta.url)) },
  platform: 'node',
  external: (id) => !id.startsWith('.') && !id.startsWith('/') && !BUNDLED.test(id),
  // The ESM build of each bundled library.
  resolve: { conditionNames: ['node', 'import', 'default'] },
  output: {
    dir: fileURLToPath(new URL('./dist', import.meta.url)),
    format: 'esm',
    entryFileNames: '[name].mjs',
    // One file: the only dynamic imports left in the graph are of externals.
    codeSplitting: false,
  },
});

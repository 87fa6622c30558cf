/**
 * The `keyport` bin's bundle, dist/bin/ (built by `pnpm build` after tsc): the CLI, commander,
 * zod and every @keyport/* package it uses, so a start reads and compiles a handful of files
 * instead of a hundred small modules.
 * - dist/bin/keyport.mjs holds the CLI, core and envelope; each adapter (and byok) is a chunk of
 *   its own, `adapter-<name>-<hash>.mjs`, imported on first use. The adapters share the bundle's
 *   one copy of @keyport/core: a second copy would break `instanceof KeyportError`, so no
 *   @keyport/* package may stay external.
 * - Provider SDKs, native modules and optional pieces (@aws-sdk, @azure, @google-cloud, gRPC,
 *   google-auth, node-vault, pkcs11js, cli-progress, yaml) stay external imports, resolved at run
 *   time from the CLI's own dependencies; they are reached only through the lazily loaded chunks
 *   or lazy imports, so `--help` and a local encrypt load none of them.
 */
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'rolldown';

/** Bare specifiers bundled; any other bare specifier stays external. */
const BUNDLED = /^(commander|zod|@keyport\/[a-z0-9-]+)(\/|$)/;

/** The workspace package a module belongs to: adapters/<name>/ or packages/<name>/. */
const WORKSPACE_PACKAGE = /[\\/](?:adapters|packages)[\\/]([a-z0-9-]+)[\\/](?!.*node_modules)/;
const NOT_ADAPTERS = new Set(['cli', 'core', 'envelope']);

export default defineConfig({
  input: { keyport: fileURLToPath(new URL('./src/main.ts', import.meta.url)) },
  platform: 'node',
  external: (id) => !id.startsWith('.') && !isAbsolute(id) && !BUNDLED.test(id),
  // The workspace packages from their TypeScript sources (no build of them needed first), the
  // libraries from their ESM builds.
  resolve: { conditionNames: ['source', 'node', 'import', 'default'] },
  output: {
    // A directory of its own, emptied first: chunk names carry content hashes, so a rebuild would
    // otherwise leave stale chunks to be published.
    dir: fileURLToPath(new URL('./dist/bin', import.meta.url)),
    cleanDir: true,
    format: 'esm',
    entryFileNames: '[name].mjs',
    // Each lazily imported adapter gets a chunk named after it (what the module-trace test and a
    // reader of a stack trace look for); the chunks shared by several are `shared-*`.
    chunkFileNames: ({ moduleIds }) => {
      const pkgs = new Set(moduleIds.map((id) => WORKSPACE_PACKAGE.exec(id)?.[1]));
      const [pkg] = pkgs;
      return pkgs.size === 1 && pkg !== undefined && !NOT_ADAPTERS.has(pkg)
        ? `adapter-${pkg}-[hash].mjs`
        : 'shared-[hash].mjs';
    },
  },
});

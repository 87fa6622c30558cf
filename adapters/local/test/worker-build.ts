/**
 * Builds this package (and the parts of core it uses) to plain ESM in a temp dir, so child
 * processes can run it: Node 20 cannot import the TypeScript sources. Shared by the
 * multi-process tests.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const testDir = fileURLToPath(new URL('.', import.meta.url));
const repo = resolve(testDir, '../../..');

/** Compiles core + this package to plain ESM and shims `@keyport/core` next to it. */
export async function compileWorkerBuild(): Promise<{ entry: string; dispose(): Promise<void> }> {
  const buildDir = await mkdtemp(join(tmpdir(), 'keyport-local-build-'));
  const out = join(buildDir, 'out');
  await writeFile(
    join(buildDir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        outDir: out,
        rootDir: repo,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        // Resolve core by path, not through the workspace symlink: tsc 7 then sometimes treats
        // core as an external library and silently skips emitting it.
        paths: { '@keyport/core': [join(repo, 'packages/core/src/index.ts')] },
        skipLibCheck: true,
        types: ['node'],
        typeRoots: [join(repo, 'node_modules/@types')],
        noEmitOnError: false,
      },
      files: [join(repo, 'packages/core/src/index.ts'), join(repo, 'adapters/local/src/index.ts')],
    }),
  );
  // Type errors elsewhere in the workspace must not stop the emit; the import below fails
  // loudly if nothing usable was produced.
  const tsc = await promisify(execFile)(
    join(repo, 'node_modules/.bin/tsc'),
    ['-p', join(buildDir, 'tsconfig.json')],
    {
      cwd: repo,
    },
  ).then(
    (r) => `${r.stdout}${r.stderr}`,
    (e: { stdout?: string; stderr?: string; message?: string }) =>
      `${e.stdout ?? ''}${e.stderr ?? ''}${e.message ?? ''}`,
  );
  for (const file of ['packages/core/src/errors.js', 'adapters/local/src/index.js']) {
    if (!existsSync(join(out, file))) throw new Error(`tsc did not emit ${file}:\n${tsc.slice(0, 3000)}`);
  }
  await writeFile(join(out, 'package.json'), '{"type":"module"}');
  const shim = join(out, 'node_modules/@keyport/core');
  await mkdir(shim, { recursive: true });
  await writeFile(
    join(shim, 'package.json'),
    '{"name":"@keyport/core","type":"module","exports":"./index.js"}',
  );
  // Only the core modules this package uses: the rest of core may be mid-edit in a workspace.
  const coreModules = [
    'errors',
    'types',
    'uri',
    'context',
    'capabilities',
    'validate',
    'ciphertext-frame',
    'key-rules',
    'emulated-data-keys',
    'exclusive-file',
    'secret-key',
  ];
  await writeFile(
    join(shim, 'index.js'),
    coreModules.map((m) => `export * from '../../../packages/core/src/${m}.js';\n`).join(''),
  );
  return {
    entry: join(out, 'adapters/local/src/index.js'),
    dispose: () => rm(buildDir, { recursive: true, force: true }),
  };
}

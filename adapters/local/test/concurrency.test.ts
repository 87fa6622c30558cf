/**
 * Two processes adding keys to one keystore at the same time lose nothing. The workers run
 * the package compiled by tsc into a temp dir (Node 20 cannot import the TypeScript sources).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, newKeystore, o, PASSPHRASE } from './helpers.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const repo = resolve(here, '../../..');
let buildDir = '';
let entry = '';

/** Compiles core + this package to plain ESM and shims `@keyport/core` next to it. */
async function compile(): Promise<void> {
  buildDir = await mkdtemp(join(tmpdir(), 'keyport-local-build-'));
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
  const coreModules = ['errors', 'types', 'uri', 'context', 'capabilities'];
  await writeFile(
    join(shim, 'index.js'),
    coreModules.map((m) => `export * from '../../../packages/core/src/${m}.js';\n`).join(''),
  );
  entry = join(out, 'adapters/local/src/index.js');
}

function startWorker(keystore: string, prefix: string, count: number, startFile: string) {
  const child = spawn(
    process.execPath,
    [
      join(here, 'fixtures/add-keys-worker.mjs'),
      entry,
      keystore,
      PASSPHRASE,
      prefix,
      String(count),
      startFile,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const ready = new Promise<void>((resolveReady, reject) => {
    const timer = setInterval(() => {
      if (stdout.includes('ready')) {
        clearInterval(timer);
        resolveReady();
      }
    }, 5);
    child.on('exit', () => {
      clearInterval(timer);
      if (!stdout.includes('ready')) reject(new Error(`worker ${prefix} died before start: ${stderr}`));
    });
  });
  const exited = new Promise<void>((resolveExit, reject) =>
    child.on('exit', (code) =>
      code === 0 && stdout.includes('done')
        ? resolveExit()
        : reject(new Error(`worker ${prefix} failed (${code}): ${stderr}`)),
    ),
  );
  exited.catch(() => undefined); // awaited by the test; a failure before start surfaces via `ready`
  return { ready, exited, kill: () => child.kill() };
}

describe('concurrent writers in separate processes', () => {
  beforeAll(compile, 60_000);
  afterAll(async () => {
    if (buildDir !== '') await rm(buildDir, { recursive: true, force: true });
  });

  it('two processes adding keys at once both keep all their keys', async () => {
    const { kp, path } = await newKeystore({ kdf: { log2N: 10 } });
    await kp.createKey({ name: 'existing', spec: 'AES_256' }, o);
    const startFile = `${path}.start`;
    const count = 15;
    const workers = [
      startWorker(path, 'alpha', count, startFile),
      startWorker(path, 'beta', count, startFile),
    ];
    try {
      await Promise.all(workers.map((w) => w.ready));
      await writeFile(startFile, 'go');
      await Promise.all(workers.map((w) => w.exited));
    } finally {
      for (const w of workers) w.kill();
    }
    const names = (await collect(kp.listKeys(o))).map((k) => k.uri.split('#')[1]).sort();
    const expected = ['existing'];
    for (let i = 0; i < count; i++) expected.push(`alpha-${i}`, `beta-${i}`);
    expect(names).toEqual(expected.sort());
  });
});

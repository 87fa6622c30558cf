// The packages as a user gets them: every public workspace package is built and packed
// (`pnpm pack`), checked by publint and @arethetypeswrong/cli, and the tarballs are installed into
// scratch projects outside the workspace with npm and with pnpm. A consumer is compiled with
// TypeScript `moduleResolution` `nodenext` (ESM and CommonJS) and `bundler`, and run.
// Run by `.ci/run` through vitest.packaging.config.ts.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
// @ts-expect-error: a plain .mjs helper shared with scripts/build-native.mjs, without types.
import { findNodeDir, nodeDirFromNodeApiHeaders } from '../node-headers.mjs';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const fixture = join(dirname(fileURLToPath(import.meta.url)), 'fixture');
const pnpm = ['-y', 'pnpm@10.20.0'];
const bin = (name: string): string => join(repoRoot, 'node_modules/.bin', name);

interface Workspace {
  readonly dir: string;
  readonly name: string;
}

/** Every workspace package that is published (not private). */
function publicPackages(): Workspace[] {
  const dirs = ['packages', 'adapters'].flatMap((r) =>
    readdirSync(join(repoRoot, r)).map((d) => join(repoRoot, r, d)),
  );
  dirs.push(join(repoRoot, 'conformance'), join(repoRoot, 'conformance/servers'));
  return dirs.flatMap((dir) => {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name: string;
        private?: boolean;
      };
      return pkg.private === true ? [] : [{ dir, name: pkg.name }];
    } catch {
      return [];
    }
  });
}

function run(cmd: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    return execFileSync(cmd, args, {
      cwd,
      encoding: 'utf8',
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; status?: number };
    throw new Error(
      `${cmd} ${args.join(' ')} (in ${cwd}) exited ${err.status}:\n${err.stdout ?? ''}\n${err.stderr ?? ''}`,
    );
  }
}

const packages = publicPackages();
let work = '';
const tarballs = new Map<string, string>();
// pkcs11js is a native addon: the scratch installs build it with headers found offline.
const nodedir: string | undefined = findNodeDir() ?? nodeDirFromNodeApiHeaders(repoRoot);
const installEnv: NodeJS.ProcessEnv = nodedir === undefined ? {} : { npm_config_nodedir: nodedir };

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'keyport-consumer-'));
  run('npx', [...pnpm, 'build', '--output-logs=errors-only'], repoRoot);
  const packed = join(work, 'tarballs');
  mkdirSync(packed);
  for (const p of packages) {
    const out = run('npx', [...pnpm, 'pack', '--pack-destination', packed], p.dir)
      .trim()
      .split('\n');
    const file = out.findLast((l) => l.endsWith('.tgz'));
    if (file === undefined) throw new Error(`pnpm pack printed no tarball for ${p.name}: ${out.join('\n')}`);
    tarballs.set(p.name, resolve(packed, basename(file.trim())));
  }
}, 600_000);

afterAll(() => {
  // KEYPORT_CONSUMER_KEEP=1 leaves the scratch projects for a look.
  if (work !== '' && process.env.KEYPORT_CONSUMER_KEEP !== '1')
    rmSync(work, { recursive: true, force: true });
});

describe.each(packages.map((p) => p.name))('%s as packed', (name) => {
  test('publint: no errors or warnings', () => {
    const unpacked = join(work, 'unpacked', name);
    mkdirSync(unpacked, { recursive: true });
    run('tar', ['-xzf', tarballs.get(name)!, '-C', unpacked, '--strip-components=1'], work);
    const out = run(bin('publint'), ['run', unpacked, '--pack', 'false', '--strict'], work);
    expect(out).not.toMatch(/Errors:|Warnings:/);
  });

  test('@arethetypeswrong/cli: no problems for Node 16+ and bundlers', () => {
    // Profile node16: node10 resolution (no `exports`) is irrelevant to packages for Node 22+.
    // `cjs-resolves-to-esm` is what require(esm) on Node 22.12+ is for: the consumer below proves
    // `require()` works. attw exits non-zero on any other problem.
    const args = ['--format', 'ascii', '--profile', 'node16', '--ignore-rules', 'cjs-resolves-to-esm'];
    const out = run(bin('attw'), [tarballs.get(name)!, ...args, '--no-color'], work);
    expect(out).toMatch(/node16 \(from ESM\): 🟢/);
    expect(out).toMatch(/bundler: 🟢/);
  });

  test('ships no file its exports or types point at but leave out', () => {
    const listing = run('tar', ['-tzf', tarballs.get(name)!], work)
      .split('\n')
      .filter(Boolean)
      .map((f) => f.replace(/^package\//, './'));
    const manifest = JSON.parse(run('tar', ['-xzOf', tarballs.get(name)!, 'package/package.json'], work)) as {
      exports: Record<string, string | Record<string, string>>;
      files: string[];
    };
    // An export is a path (`"./policy.schema.json": "./schema/…"`) or a map of conditions.
    for (const conditions of Object.values(manifest.exports)) {
      const targets = typeof conditions === 'string' ? [conditions] : Object.values(conditions);
      for (const target of targets) expect(listing).toContain(target);
    }
    expect(listing).toContain('./LICENSE');
    expect(listing).toContain('./README.md');
  });
});

describe.each(['npm', 'pnpm'] as const)('a scratch project installed with %s', (manager) => {
  let project = '';

  beforeAll(() => {
    project = join(work, `consumer-${manager}`);
    cpSync(fixture, project, { recursive: true });
    const deps = Object.fromEntries([...tarballs].map(([n, f]) => [n, `file:${f}`]));
    const manifest = {
      name: `keyport-consumer-${manager}`,
      private: true,
      dependencies: { ...deps, '@types/node': '22.20.7' },
      // The tarballs depend on each other by version (^0.x): point those at the tarballs too.
      overrides: Object.fromEntries([...tarballs.keys()].map((n) => [n, `$${n}`])),
      pnpm: { overrides: deps, onlyBuiltDependencies: ['pkcs11js'] },
    };
    writeFileSync(join(project, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    if (manager === 'npm')
      run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], project, installEnv);
    else run('npx', [...pnpm, 'install', '--config.confirmModulesPurge=false'], project, installEnv);
  }, 600_000);

  test('TypeScript nodenext: ESM and CommonJS compile and run', () => {
    run(bin('tsc'), ['-p', 'tsconfig.nodenext.json'], project);
    const esm = JSON.parse(run(process.execPath, ['out/esm.mjs'], project));
    expect(esm).toMatchObject({
      kind: 'esm',
      roundTrip: 'hello from an installed package',
      refused: 'InvalidCiphertext',
      harness: 'moto',
      suiteIsAFunction: true,
      testServers: true,
    });
    for (const count of Object.values(esm.exports as Record<string, number>))
      expect(count).toBeGreaterThan(0);
    const cjs = JSON.parse(run(process.execPath, ['out/cjs.cjs'], project));
    expect(cjs).toMatchObject({ kind: 'cjs', roundTrip: 'hello from require' });
    for (const count of Object.values(cjs.exports as Record<string, number>))
      expect(count).toBeGreaterThan(0);
  });

  // The npm install's compiled consumer, on every supported line (pnpm's runs on this Node above).
  if (manager === 'npm')
    test.each(['22', '24', '26'])('the compiled consumer runs on Node %s from npm', (major) => {
      const node = run('npx', ['-y', `node@${major}`, '-p', 'process.execPath'], project).trim();
      expect(JSON.parse(run(node, ['out/esm.mjs'], project))).toMatchObject({
        roundTrip: 'hello from an installed package',
      });
      expect(JSON.parse(run(node, ['out/cjs.cjs'], project))).toMatchObject({
        roundTrip: 'hello from require',
      });
    });

  test('TypeScript bundler resolution typechecks', () => {
    run(bin('tsc'), ['-p', 'tsconfig.bundler.json'], project);
  });

  test('the keyport command runs from the install', () => {
    const out = run(join(project, 'node_modules/.bin/keyport'), ['--version'], project);
    expect(out.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});

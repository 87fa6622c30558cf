/**
 * The root README's opening promises, checked: its two commands are the package.json scripts
 * and the line `.ci/run` runs, its first code sample runs as written on the local provider, and
 * its layout names every workspace package and example, its dependency rule, Node lines, CI matrix
 * and fuzz convention hold. (The capability matrix and the custom driver sample are checked in
 * conformance/test/readme-*.test.ts.)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Keyport } from '@keyport/core';
import { openLocalKeystore } from '@keyport/local';
import { describe, expect, it } from 'vitest';

const repo = join(import.meta.dirname, '../../..');
const readme = readFileSync(join(repo, 'README.md'), 'utf8');
const rootPackage = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
  packageManager: string;
  scripts: Record<string, string>;
};

const readJson = <T>(...parts: string[]): T => JSON.parse(readFileSync(join(repo, ...parts), 'utf8')) as T;

/** Code without its comments (a doc comment may show an import it does not make). */
const code = (text: string): string =>
  text
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('//'))
    .join('\n');

/** Source files of one folder, recursively, as paths relative to the repository. */
const sourceFiles = (dir: string): string[] =>
  existsSync(join(repo, dir))
    ? readdirSync(join(repo, dir), { recursive: true, encoding: 'utf8' })
        .filter((f) => /\.(ts|mts|js|mjs)$/.test(f) && !f.includes('node_modules'))
        .map((f) => join(dir, f))
    : [];

/**
 * The keyport packages a workspace package reaches: those its package.json depends on (not dev),
 * those its src imports by name, and any src import that leaves the package's folder.
 */
function reaches(dir: string): { declared: string[]; imported: string[]; outside: string[] } {
  const pkg = readJson<Record<string, Record<string, string> | undefined>>(dir, 'package.json');
  const declared = ['dependencies', 'peerDependencies', 'optionalDependencies']
    .flatMap((field) => Object.keys(pkg[field] ?? {}))
    .filter((name) => name.startsWith('@keyport/'));
  const imported = new Set<string>();
  const outside = new Set<string>();
  for (const file of sourceFiles(join(dir, 'src'))) {
    const text = code(readFileSync(join(repo, file), 'utf8'));
    for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)['"]([^'"]+)['"]/g)) {
      const spec = m[1] as string;
      const named = /^(@keyport\/[a-z0-9-]+)/.exec(spec);
      if (named !== null) imported.add(named[1] as string);
      else if (
        spec.startsWith('.') &&
        relative(dir, relative(repo, resolve(repo, dirname(file), spec))).startsWith('..')
      )
        outside.add(`${file}: ${spec}`);
    }
  }
  const sorted = (items: Iterable<string>) => [...new Set(items)].sort();
  return { declared: sorted(declared), imported: sorted(imported), outside: sorted(outside) };
}

/** The fenced blocks of one language, in order. */
const blocks = (lang: string): string[] =>
  [...readme.matchAll(new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``, 'g'))].map((m) => m[1] as string);

describe('root README', () => {
  it('opens with exactly two commands: the quickstart and the whole test suite, as CI runs them', () => {
    expect(readme.indexOf('```sh')).toBeLessThan(readme.indexOf('\n## '));
    const commands = (blocks('sh')[0] ?? '').trim().split('\n');
    const pnpm = `npx -y ${rootPackage.packageManager}`;
    expect(rootPackage.packageManager).toMatch(/^pnpm@\d+\.\d+\.\d+$/);
    expect(commands).toEqual([
      `${pnpm} install --frozen-lockfile && ${pnpm} quickstart`,
      `${pnpm} install --frozen-lockfile && ${pnpm} test`,
    ]);
    expect(rootPackage.scripts.quickstart).toContain('examples/quickstart/dist/main.js');
    expect(rootPackage.scripts.test).toMatch(/pnpm lint && pnpm typecheck && vitest run/);
    const ci = readFileSync(join(repo, '.ci/run'), 'utf8').split('\n');
    expect(ci).toContain(commands[1]);
  });

  it('its first code sample runs as written, and a different context is refused', async () => {
    const sample = blocks('ts')[0] ?? '';
    expect(sample).toContain('new Keyport(');
    const dir = await mkdtemp(join(tmpdir(), 'kp-readme-'));
    const body = sample
      .split('\n')
      .filter((line) => !line.startsWith('import '))
      .join('\n')
      .replace("'keys.kp'", JSON.stringify(join(dir, 'keys.kp')));
    expect(body).not.toContain("'keys.kp'");
    const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (
      ...args: string[]
    ) => (
      ...values: unknown[]
    ) => Promise<{ kp: Keyport; key: { uri: string }; ciphertext: Uint8Array; plaintext: Uint8Array }>;
    const run = new AsyncFunction(
      'Keyport',
      'openLocalKeystore',
      'passphrase',
      'data',
      `${body}\nreturn { kp, key, ciphertext, plaintext };`,
    );
    const data = new TextEncoder().encode('a README promise');
    const { kp, key, ciphertext, plaintext } = await run(
      Keyport,
      openLocalKeystore,
      'readme passphrase',
      data,
    );
    try {
      expect(key.uri).toMatch(/^local:\/\/.*#orders$/);
      expect(Buffer.from(plaintext).equals(Buffer.from(data))).toBe(true);
      await expect(kp.decrypt(key.uri, ciphertext, { context: { tenant: 'other' } })).rejects.toMatchObject({
        name: 'KeyportError',
        code: 'InvalidCiphertext',
      });
    } finally {
      await kp.close();
    }
  });

  it('names the factory every adapter exports', () => {
    const factories: Record<string, string> = {
      'aws-kms': 'awsKms',
      'azure-keyvault': 'azureKeyVault',
      'gcp-kms': 'gcpKms',
      'vault-transit': 'vaultTransit',
      pkcs11: 'pkcs11',
      local: 'localKeystore',
    };
    expect(readdirSync(join(repo, 'adapters')).sort()).toEqual(Object.keys(factories).sort());
    for (const [adapter, factory] of Object.entries(factories)) {
      expect(readme).toContain(`\`${factory}({`);
      expect(readFileSync(join(repo, 'adapters', adapter, 'src/index.ts'), 'utf8')).toMatch(
        new RegExp(`export \\{[^}]*\\b${factory}\\b[^}]*\\} from`),
      );
    }
  });

  it('its layout names every workspace package and every example', () => {
    const layout = readme.slice(readme.indexOf('## Layout'), readme.indexOf('## Development'));
    for (const root of ['packages', 'adapters']) {
      for (const dir of readdirSync(join(repo, root))) {
        if (!existsSync(join(repo, root, dir, 'package.json'))) continue;
        const name = (
          JSON.parse(readFileSync(join(repo, root, dir, 'package.json'), 'utf8')) as { name: string }
        ).name;
        expect(layout, `${root}/${dir}`).toMatch(new RegExp(`${root}/${dir} +${name} `));
      }
    }
    const examples = layout.slice(layout.indexOf('examples/'));
    for (const dir of readdirSync(join(repo, 'examples'))) expect(examples, dir).toContain(dir);
  });

  it('points at files that exist', () => {
    for (const path of [
      'scripts/on-supported-node.mjs',
      'scripts/build-native.mjs',
      'packages/cli/README.md',
      'packages/envelope/README.md',
      'conformance/servers/README-azure.md',
      'conformance/servers/README-gcp.md',
      'examples/custom-driver',
      'examples/byok-hsm-and-cloud',
      'examples/opentelemetry',
      'vitest.node-matrix.config.ts',
    ]) {
      expect(readme, path).toContain(path);
      expect(existsSync(join(repo, path)), path).toBe(true);
    }
  });

  it('dependencies point one way: core on no keyport package, envelope and every adapter on core alone, cli on everything', () => {
    expect(reaches('packages/core')).toEqual({ declared: [], imported: [], outside: [] });
    const onCore = { declared: ['@keyport/core'], imported: ['@keyport/core'], outside: [] };
    expect(reaches('packages/envelope')).toEqual(onCore);
    for (const adapter of readdirSync(join(repo, 'adapters')))
      expect(reaches(join('adapters', adapter)), adapter).toEqual(onCore);
    const cli = reaches('packages/cli');
    for (const name of ['core', 'envelope', ...readdirSync(join(repo, 'adapters'))]) {
      const pkg = readJson<{ name: string }>(
        name === 'core' || name === 'envelope' ? 'packages' : 'adapters',
        name,
        'package.json',
      ).name;
      expect(cli.declared, pkg).toContain(pkg);
      expect(cli.imported, pkg).toContain(pkg);
    }
  });

  it('every published package needs Node 22.12 or newer, and CI runs the offline suites it names on Node 22, 24 and 26', async () => {
    const published = [
      '.',
      ...['packages', 'adapters'].flatMap((root) => readdirSync(join(repo, root)).map((d) => join(root, d))),
      'conformance',
      'conformance/servers',
    ];
    for (const dir of published) {
      const pkg = readJson<{ engines?: { node?: string } }>(dir, 'package.json');
      expect(pkg.engines?.node, dir).toBe('>=22.12');
    }
    expect(readFileSync(join(repo, '.ci/run'), 'utf8').split('\n')).toContain(
      'node scripts/node-matrix.mjs 22 24 26 || status=1',
    );
    expect(readFileSync(join(repo, 'scripts/node-matrix.mjs'), 'utf8')).toContain(
      'vitest.node-matrix.config.ts',
    );
    const config = (await import(pathToFileURL(join(repo, 'vitest.node-matrix.config.ts')).href)) as {
      default: { test: { projects: Array<{ test: { name: string; include: string[] } }> } };
    };
    const projects = new Map(config.default.test.projects.map((p) => [p.test.name, p.test.include]));
    // "core, envelope, local, aws-kms's stubbed SHA-256 test, the CLI without emulators, conformance
    // on the local provider, and the quickstart, opentelemetry and test-servers-in-your-tests examples"
    expect([...projects.keys()].sort()).toEqual(
      [
        'core',
        'envelope',
        'local',
        'aws-kms',
        'cli',
        'conformance',
        'quickstart',
        'opentelemetry',
        'test-servers-in-your-tests',
      ].sort(),
    );
    expect(projects.get('aws-kms')).toEqual(['test/sha256.test.ts']);
    expect(projects.get('conformance')).toContain('test/local.conformance.test.ts');
  });

  it('every fuzz test file takes its run count from KEYPORT_FUZZ_RUNS, as `pnpm fuzz` sets it', () => {
    const projects = [
      ...['packages', 'adapters', 'examples'].flatMap((root) =>
        readdirSync(join(repo, root)).map((d) => join(root, d)),
      ),
      'conformance',
      'conformance/servers',
    ];
    const fuzz = projects
      .flatMap((dir) => sourceFiles(join(dir, 'test')))
      .filter((file) => /fuzz[^/]*\.test\.ts$/.test(file.split('/').pop() ?? ''));
    expect(fuzz.length).toBeGreaterThan(0);
    for (const file of fuzz)
      expect(code(readFileSync(join(repo, file), 'utf8')), file).toContain('process.env.KEYPORT_FUZZ_RUNS');
  });

  // Only a machine with a Node older than 22.12 on it can show this; elsewhere there is nothing to run.
  const oldNode = ['/usr/bin/node', '/usr/local/bin/node', '/bin/node'].find((path) => {
    if (!existsSync(path)) return false;
    const run = spawnSync(path, ['-p', 'process.versions.node'], { encoding: 'utf8' });
    const [major = 0, minor = 0] = run.stdout.trim().split('.').map(Number);
    return run.status === 0 && (major < 22 || (major === 22 && minor < 12));
  });
  it.skipIf(oldNode === undefined)(
    'on a Node older than 22.12, the commands run themselves on Node 24 from npm and say so on stderr',
    () => {
      const run = spawnSync(
        oldNode as string,
        ['scripts/on-supported-node.mjs', 'node -p process.versions.node && exit 3'],
        { cwd: repo, encoding: 'utf8', timeout: 120_000 },
      );
      expect(run.stderr).toMatch(
        /\[keyport\] Node v[\d.]+ is older than keyport's >=22\.12: running on Node v24\./,
      );
      expect(run.stdout.trim()).toMatch(/^24\./);
      expect(run.status).toBe(3); // the command's own exit status
    },
    150_000,
  );
});

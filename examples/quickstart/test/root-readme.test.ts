/**
 * The root README's opening promises, checked: its two commands are the package.json scripts
 * and the line `.ci/run` runs, its first code sample runs as written on the local provider, and
 * its layout names every workspace package and example. (The capability matrix and the custom
 * driver sample are checked in conformance/test/readme-*.test.ts.)
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keyport } from '@keyport/core';
import { openLocalKeystore } from '@keyport/local';
import { describe, expect, it } from 'vitest';

const repo = join(import.meta.dirname, '../../..');
const readme = readFileSync(join(repo, 'README.md'), 'utf8');
const rootPackage = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
  packageManager: string;
  scripts: Record<string, string>;
};

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
});

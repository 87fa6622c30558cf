/**
 * The README's TypeScript samples, run as written against keyport's Key Vault server: the code
 * blocks are read from the README, their imports supplied, and only the vault URL literal is
 * replaced by the test server's options (a static token and the test CA for this client).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Keyport } from '@keyport/core';
import type { AzureKeyVaultServer } from '@keyport/test-servers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as adapter from '../src/index.js';
import { clientOptions, startServer, staticToken, TOKENS } from './support/server.js';

let server: AzureKeyVaultServer;
beforeAll(async () => {
  server = await startServer('vault');
});
afterAll(async () => {
  await server.stop();
});

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
const VAULT_OPTIONS = "{ vaultUrl: 'https://my-vault.vault.azure.net' }";

type Sample = (...args: unknown[]) => Promise<Record<string, unknown>>;
const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as new (
  ...args: string[]
) => Sample;

describe('README samples', () => {
  it('Usage and the Key Vault-only operations run as written', async () => {
    expect(blocks).toHaveLength(2);
    const code = blocks.join('\n');
    expect(code).toContain(VAULT_OPTIONS);
    const imports = [...code.matchAll(/^import \{([^}]*)\} from '([^']+)';$/gm)];
    const supplied: Record<string, unknown> = {
      '@keyport/core': { Keyport },
      '@keyport/azure-keyvault': adapter,
    };
    const names: string[] = [];
    const values: unknown[] = [];
    for (const [, list = '', from = ''] of imports) {
      for (const name of list.split(',').map((n) => n.trim())) {
        const value = (supplied[from] as Record<string, unknown> | undefined)?.[name];
        expect(value, `${name} from ${from}`).toBeDefined();
        names.push(name);
        values.push(value);
      }
    }
    const body = code
      .replace(/^import [^;]*;$/gm, '')
      .replace(VAULT_OPTIONS, '__options')
      .concat('\nreturn { keyport, key, ciphertext, keyVersion, plaintext };');
    const options = {
      vaultUrl: server.url,
      credential: staticToken(TOKENS.admin),
      clientOptions: clientOptions(server.caFile),
      pollIntervalMs: 5,
    };
    const data = randomBytes(40);
    const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
    const run = new AsyncFunction(...names, 'data', 'jwk', '__options', body);
    const out = await run(...values, data, jwk, options);
    const keyport = out.keyport as Keyport;
    try {
      expect(Buffer.from(out.plaintext as Uint8Array).equals(data)).toBe(true);
      expect(out.keyVersion).toBe((out.key as { primaryVersion: string }).primaryVersion);
      // The restored key is the one backed up; the imported one is there.
      const restored = await keyport.describeKey((out.key as { uri: string }).uri);
      expect(restored.state).toBe('enabled');
      await expect(
        keyport.describeKey(`azurekeyvault://${new URL(server.url).host}/keys/imported`),
      ).resolves.toMatchObject({ spec: 'RSA_2048', usage: 'encrypt_decrypt' });
    } finally {
      await keyport.close();
    }
  });
});

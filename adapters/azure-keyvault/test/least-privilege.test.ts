/**
 * The README's least-privilege table, row by row: a principal holding exactly the permissions a
 * row names (nothing optional) runs that operation against keyport's Key Vault server, and the
 * README row names every permission the test grants.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type KeyInfo, Keyport } from '@keyport/core';
import {
  type AzureKeyPermission,
  type AzureKeyVaultServer,
  DEFAULT_AZURE_TOKEN,
  startAzureKeyVaultServer,
} from '@keyport/test-servers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AzureKeyVaultProvider } from '../src/index.js';
import { clientOptions, staticToken, uniqueName } from './support/server.js';

interface Row {
  /** The operation cell of the README row. */
  readonly row: string;
  readonly mode: 'vault' | 'hsm';
  readonly grant: readonly AzureKeyPermission[];
  /** Runs the operation as the principal; `admin` prepares what it needs. */
  readonly run: (as: Principal, admin: Principal) => Promise<unknown>;
}
interface Principal {
  readonly keyport: Keyport;
  readonly driver: AzureKeyVaultProvider;
}

const rsa = (p: Principal, usage: 'encrypt_decrypt' | 'sign_verify' = 'encrypt_decrypt') =>
  p.keyport.createKey('azurekeyvault', { name: uniqueName('lp'), spec: 'RSA_2048', usage });
const deleted = async (admin: Principal): Promise<KeyInfo> => {
  const key = await rsa(admin);
  await admin.keyport.scheduleKeyDeletion(key.uri);
  return key;
};

const ROWS: readonly Row[] = [
  {
    row: 'encrypt, generateDataKey — RSA',
    mode: 'vault',
    grant: ['get', 'wrapKey'],
    run: async (as, admin) => {
      const key = await rsa(admin);
      await as.keyport.encrypt(key.uri, randomBytes(16), { context: { a: 'b' } });
      await as.keyport.generateDataKey(key.uri, { bytes: 32 });
    },
  },
  {
    row: 'decrypt — RSA',
    mode: 'vault',
    grant: ['unwrapKey'],
    run: async (as, admin) => {
      const key = await rsa(admin);
      const { ciphertext } = await admin.keyport.encrypt(key.uri, randomBytes(16));
      await as.keyport.decrypt(key.uri, ciphertext);
    },
  },
  {
    row: 'encrypt / decrypt — AES (HSM)',
    mode: 'hsm',
    grant: ['get', 'encrypt', 'decrypt'],
    run: async (as, admin) => {
      const key = await admin.keyport.createKey('azurekeyvault', { name: uniqueName('lp'), spec: 'AES_256' });
      const { ciphertext } = await as.keyport.encrypt(key.uri, randomBytes(16), { context: { a: 'b' } });
      await as.keyport.decrypt(key.uri, ciphertext, { context: { a: 'b' } });
    },
  },
  {
    row: 'sign / verify',
    mode: 'vault',
    grant: ['get', 'sign', 'verify'],
    run: async (as, admin) => {
      const key = await admin.keyport.createKey('azurekeyvault', { name: uniqueName('lp'), spec: 'EC_P256' });
      const message = randomBytes(16);
      const { signature, algorithm } = await as.keyport.sign(key.uri, message);
      expect(await as.keyport.verify(key.uri, message, signature, { algorithm })).toBe(true);
    },
  },
  {
    row: 'getPublicKey',
    mode: 'vault',
    grant: ['get'],
    run: async (as, admin) => as.keyport.getPublicKey((await rsa(admin, 'sign_verify')).uri),
  },
  {
    row: 'createKey',
    mode: 'vault',
    grant: ['get', 'create'],
    run: (as) => rsa(as),
  },
  {
    row: 'createKey',
    mode: 'vault',
    // With a rotation the key is created disabled and enabled once its policy is written: `update`.
    grant: ['get', 'create', 'getrotationpolicy', 'setrotationpolicy', 'update'],
    run: (as) =>
      as.keyport.createKey('azurekeyvault', {
        name: uniqueName('lp'),
        spec: 'RSA_2048',
        rotation: { periodDays: 30 },
      }),
  },
  {
    row: 'describeKey, listKeys',
    mode: 'vault',
    grant: ['get', 'list'],
    run: async (as, admin) => {
      const key = await rsa(admin);
      await as.keyport.describeKey(key.uri);
      const listed: string[] = [];
      for await (const k of as.keyport.listKeys('azurekeyvault')) listed.push(k.uri);
      expect(listed).toContain(key.uri);
    },
  },
  {
    row: 'rotateKey',
    mode: 'vault',
    grant: ['rotate', 'get', 'list'],
    run: async (as, admin) => as.keyport.rotateKey((await rsa(admin)).uri),
  },
  {
    row: 'setRotationPolicy',
    mode: 'vault',
    grant: ['getrotationpolicy', 'setrotationpolicy', 'get', 'list'],
    run: async (as, admin) => as.keyport.setRotationPolicy((await rsa(admin)).uri, { periodDays: 30 }),
  },
  {
    row: 'enableKey / disableKey, setValidity',
    mode: 'vault',
    grant: ['list', 'update', 'get'],
    run: async (as, admin) => {
      const key = await rsa(admin);
      await as.keyport.disableKey(key.uri);
      await as.keyport.enableKey(key.uri);
      await as.driver.setValidity({ uri: key.uri }, { expiresOn: new Date(Date.now() + 86_400_000) });
    },
  },
  {
    row: 'scheduleKeyDeletion',
    mode: 'vault',
    grant: ['delete', 'get'],
    run: async (as, admin) => as.keyport.scheduleKeyDeletion((await rsa(admin)).uri),
  },
  {
    row: 'cancelKeyDeletion',
    mode: 'vault',
    grant: ['recover', 'get', 'list'],
    run: async (as, admin) => {
      const restored = await as.keyport.cancelKeyDeletion((await deleted(admin)).uri);
      expect(restored.state).toBe('enabled');
    },
  },
  {
    row: 'purgeDeletedKey',
    mode: 'vault',
    grant: ['purge'],
    run: async (as, admin) => as.driver.purgeDeletedKey({ uri: (await deleted(admin)).uri }),
  },
  {
    row: 'backupKey',
    mode: 'vault',
    grant: ['backup'],
    run: async (as, admin) => as.driver.backupKey({ uri: (await rsa(admin)).uri }),
  },
  {
    row: 'restoreKey',
    mode: 'vault',
    grant: ['restore', 'get', 'list'],
    run: async (as, admin) => {
      const key = await rsa(admin);
      const blob = await admin.driver.backupKey({ uri: key.uri });
      await admin.keyport.scheduleKeyDeletion(key.uri);
      await admin.driver.purgeDeletedKey({ uri: key.uri });
      expect((await as.driver.restoreKey(blob)).uri).toBe(key.uri);
    },
  },
  {
    row: 'importJwk',
    mode: 'vault',
    grant: ['import', 'get'],
    run: async (as) => {
      const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
      await as.driver.importJwk(uniqueName('lp'), jwk as { kty: string });
    },
  },
];

const tokenOf = (i: number) => `least-privilege-${i}`;
const servers: Partial<Record<'vault' | 'hsm', AzureKeyVaultServer>> = {};
const opened: Keyport[] = [];

function principal(mode: 'vault' | 'hsm', token: string): Principal {
  const server = servers[mode];
  if (server === undefined) throw new Error(`no ${mode} server`);
  const driver = new AzureKeyVaultProvider({
    vaultUrl: server.url,
    credential: staticToken(token),
    clientOptions: clientOptions(server.caFile),
    vaultKind: mode === 'hsm' ? 'managedHsm' : 'vault',
    pollIntervalMs: 5,
  });
  const keyport = new Keyport({ providers: [driver], retry: { maxAttempts: 1 } });
  opened.push(keyport);
  return { keyport, driver };
}

beforeAll(async () => {
  const principals: Record<string, readonly AzureKeyPermission[] | 'all'> = { [DEFAULT_AZURE_TOKEN]: 'all' };
  ROWS.forEach((r, i) => {
    principals[tokenOf(i)] = r.grant;
  });
  for (const mode of ['vault', 'hsm'] as const) {
    servers[mode] = await startAzureKeyVaultServer({ mode, principals, softDeleteRetentionDays: 7 });
  }
});
afterAll(async () => {
  for (const k of opened) await k.close();
  for (const s of Object.values(servers)) await s?.stop();
});

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('least privilege (README table)', () => {
  it.each(ROWS.map((r, i) => [r.row, r.grant.join(', '), i] as const))(
    '%s with exactly %s',
    async (_row, _grant, i) => {
      const r = ROWS[i] as Row;
      const line = readme.split('\n').find((l) => l.startsWith(`| ${r.row} |`));
      expect(line, `README row "${r.row}"`).toBeDefined();
      for (const permission of r.grant) expect(line).toContain(`\`${permission}\``);
      await r.run(principal(r.mode, tokenOf(i)), principal(r.mode, DEFAULT_AZURE_TOKEN));
    },
  );
});

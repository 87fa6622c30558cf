import { homedir } from 'node:os';
import { join } from 'node:path';
import type { KeyClient } from '@azure/keyvault-keys';
import { afterEach, describe, expect, it } from 'vitest';
import { type AzureKeyVaultServer, startAzureKeyVaultServer } from '../src/azure/index.js';
import { ADMIN, keyClient, PRINCIPALS } from './azure-helpers.js';
import { type Run, run } from './run-child.js';

// Microsoft's published @azure/keyvault-keys TypeScript samples (vendored unchanged under
// fixtures/azure-keyvault-keys-samples, MIT: see SOURCE.md there), each run as its own Node
// process, as a user runs `node sample.ts`, against the Key Vault test server. What is supplied:
// - KEYVAULT_URI: the server's URL (the samples read it from the environment);
// - IDENTITY_ENDPOINT / IDENTITY_HEADER: the server's managed-identity endpoint, so the samples'
//   own `new DefaultAzureCredential()` gets its token there;
// - NODE_EXTRA_CA_CERTS: the server's CA, trusted by that process;
// - fixtures/azure-samples-loader.mjs (preloaded): `disableChallengeResourceVerification: true`
//   on the clients, a no-op dotenv (not in our lockfile) and `@azure/logger` found through
//   @azure/keyvault-keys (pnpm does not hoist it). The sample files themselves are not edited.
const FIXTURES = join(import.meta.dirname, 'fixtures');
const SAMPLES = join(FIXTURES, 'azure-keyvault-keys-samples');
const STRIP_TYPES = (process.features as { typescript?: unknown }).typescript
  ? []
  : ['--experimental-strip-types'];
const POLL = { intervalInMs: 1 };

let server: AzureKeyVaultServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

async function vault(): Promise<{ server: AzureKeyVaultServer; client: KeyClient }> {
  server = await startAzureKeyVaultServer({ principals: PRINCIPALS, identityToken: ADMIN });
  return { server, client: keyClient(server, ADMIN) };
}

function runSample(target: AzureKeyVaultServer, file: string): Promise<Run> {
  return run(
    process.execPath,
    [...STRIP_TYPES, '--import', join(FIXTURES, 'azure-samples-register.mjs'), join(SAMPLES, file)],
    {
      PATH: process.env.PATH ?? '',
      HOME: homedir(),
      KEYVAULT_URI: target.url,
      IDENTITY_ENDPOINT: target.identity.endpoint,
      IDENTITY_HEADER: target.identity.header,
      NODE_EXTRA_CA_CERTS: target.caFile,
    },
  );
}

function expectSuccess(run: Run): void {
  expect(run.code, `${run.stderr}\n${run.stdout.slice(-2000)}`).toBe(0);
  expect(run.stdout).not.toMatch(/An error occurred/);
}

async function names(listing: AsyncIterable<{ name: string }>): Promise<string[]> {
  const out: string[] = [];
  for await (const item of listing) out.push(item.name);
  return out;
}

describe("Microsoft's @azure/keyvault-keys samples, unedited", () => {
  it('helloWorld.ts: create, get, list, update, delete, get deleted, purge', async () => {
    const { server: target, client } = await vault();
    const run = await runSample(target, 'helloWorld.ts');
    expectSuccess(run);
    expect(run.stdout).toMatch(/purge a single key: /);
    const live = await names(client.listPropertiesOfKeys());
    expect(live).toHaveLength(2);
    expect(live.some((n) => /^sample-ec-key-\d+$/.test(n))).toBe(true);
    expect(live.some((n) => /^sample-rsa-key-\d+$/.test(n))).toBe(true);
    expect(await names(client.listDeletedKeys())).toEqual([]); // the EC key was purged
  }, 60_000);

  it('cryptography.ts: encrypt/decrypt, sign/verify (digest and data), wrap/unwrap with RSA keys', async () => {
    const { server: target, client } = await vault();
    const run = await runSample(target, 'cryptography.ts');
    expectSuccess(run);
    expect(run.stdout).toContain('decrypt:  My Message');
    expect(run.stdout).toContain('decrypt result:  My Message');
    expect(run.stdout).toMatch(/verify result: {2}\{[^}]*result: true/s);
    expect(run.stdout).toMatch(/verify result: {2}true/);
    expect(run.stdout).not.toMatch(/verify result: {2}false/);
    expect((await names(client.listPropertiesOfKeys())).length).toBeGreaterThanOrEqual(1);
  }, 120_000);

  it('keyRotation.ts: rotation policies set, read and written back, on-demand rotation', async () => {
    const { server: target, client } = await vault();
    const run = await runSample(target, 'keyRotation.ts');
    expectSuccess(run);
    // MyKeyName: three creates and one rotation, with the last policy the sample set.
    expect(await names(client.listPropertiesOfKeyVersions('MyKeyName'))).toHaveLength(4);
    const policy = await client.getKeyRotationPolicy('MyKeyName');
    expect(policy.expiresIn).toBe('P90D');
    expect(policy.lifetimeActions).toContainEqual({ action: 'Rotate', timeBeforeExpiry: 'P30D' });
    const rotated = (await names(client.listPropertiesOfKeys())).find((n) =>
      n.startsWith('key-rotation-sample-key-'),
    );
    expect(rotated).toBeDefined();
    expect(await names(client.listPropertiesOfKeyVersions(rotated!))).toHaveLength(2);
  }, 60_000);

  it('gettingStarted.ts: clients with the default and an older service version, a remote and a local CryptographyClient', async () => {
    const { server: target, client } = await vault();
    const run = await runSample(target, 'gettingStarted.ts');
    expectSuccess(run);
    expect(run.stdout).toContain(`KeyClient vault URL: ${target.url}`);
    expect(run.stdout).toMatch(
      new RegExp(`CryptographyClient key ID: ${target.url}/keys/MyCryptoKey-\\d+/[0-9a-f]{32}`),
    );
    expect(
      (await names(client.listPropertiesOfKeys())).filter((n) => n.startsWith('MyCryptoKey-')),
    ).toHaveLength(1);
  }, 60_000);

  it('purgeAllKeys.ts: deletes every key, then purges every deleted key (those it deleted and older ones)', async () => {
    const { server: target, client } = await vault();
    for (let i = 0; i < 4; i++) await client.createEcKey(`purge-me-${i}`);
    for (let i = 0; i < 3; i++) {
      await client.createEcKey(`already-deleted-${i}`);
      await (await client.beginDeleteKey(`already-deleted-${i}`, POLL)).pollUntilDone();
    }
    const run = await runSample(target, 'purgeAllKeys.ts');
    expectSuccess(run);
    expect(await names(client.listPropertiesOfKeys())).toEqual([]);
    expect(await names(client.listDeletedKeys())).toEqual([]);
  }, 60_000);
});

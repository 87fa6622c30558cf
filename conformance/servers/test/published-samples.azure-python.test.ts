import type { KeyClient } from '@azure/keyvault-keys';
import { afterEach, describe, expect, it } from 'vitest';
import { type AzureKeyVaultServer, startAzureKeyVaultServer } from '../src/azure/index.js';
import { ADMIN, keyClient, PRINCIPALS } from './azure-helpers.js';
import { sampleEnv, samplePython } from './python-samples.js';
import { type Run, run } from './run-child.js';

// Microsoft's azure-keyvault-keys Python samples (from the 4.12.0b3 sdist on PyPI, the version in
// the harness's venv; vendored unchanged under fixtures/azure-keyvault-keys-python-samples, MIT:
// see SOURCE.md there), each run as its own Python process, as `python sample.py` runs, against
// the Key Vault test server. What is supplied:
// - VAULT_URL: the server's URL (the samples read it from the environment);
// - IDENTITY_ENDPOINT / IDENTITY_HEADER: the server's managed-identity endpoint, so the samples'
//   own DefaultAzureCredential (sync and aio) gets its token there;
// - SSL_CERT_FILE / REQUESTS_CA_BUNDLE: the server's CA (aiohttp reads the first, requests the
//   second);
// - python/azure_sample_runner.py: KeyClient defaults to verify_challenge_resource=False, and the
//   samples' own sleeps (a 60 s wait for the service's purge) return at once. The sample files
//   themselves are not edited.
const SAMPLES = `${import.meta.dirname}/fixtures/azure-keyvault-keys-python-samples`;
const RUNNER = `${import.meta.dirname}/../python/azure_sample_runner.py`;

let server: AzureKeyVaultServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

async function runSample(file: string): Promise<{ run: Run; client: KeyClient; url: string }> {
  const python = await samplePython('azure-keyvault', 'azure-keyvault-keys');
  server = await startAzureKeyVaultServer({ principals: PRINCIPALS, identityToken: ADMIN });
  const result = await run(python, [RUNNER, `${SAMPLES}/${file}`], {
    ...sampleEnv(),
    PATH: process.env.PATH ?? '',
    VAULT_URL: server.url,
    IDENTITY_ENDPOINT: server.identity.endpoint,
    IDENTITY_HEADER: server.identity.header,
    SSL_CERT_FILE: server.caFile,
    REQUESTS_CA_BUNDLE: server.caFile,
  });
  expect(result.code, `${result.stderr}\n${result.stdout.slice(-3000)}`).toBe(0);
  expect(result.stderr).toBe('');
  return { run: result, client: keyClient(server, ADMIN), url: server.url };
}

async function names(listing: AsyncIterable<{ name: string }>): Promise<string[]> {
  const out: string[] = [];
  for await (const item of listing) out.push(item.name);
  return out.sort();
}

const DAY = 24 * 60 * 60 * 1000;

describe("Microsoft's azure-keyvault-keys Python samples, unedited", () => {
  for (const [file, suffix] of [
    ['hello_world.py', ''],
    ['hello_world_async.py', 'Async'],
  ] as const) {
    it(`${file}: create RSA and EC keys, get, update (disable, expiry), delete`, async () => {
      const { run: r, client } = await runSample(file);
      // The key type prints as the SDK's enum (JsonWebKeyType.RSA), against Azure too.
      expect(r.stdout).toContain(
        `RSA Key with name 'rsaKeyName${suffix}' created of type 'JsonWebKeyType.RSA'`,
      );
      expect(r.stdout).toMatch(
        new RegExp(`EC Key with name 'ECKeyName${suffix}' created of type '?JsonWebKeyType\\.EC'?`),
      );
      expect(r.stdout).toContain(`Key with name 'rsaKeyName${suffix}' was found.`);
      expect(r.stdout).toMatch(
        new RegExp(`Key with name 'ECKeyName${suffix}' was updated to expire on '20\\d\\d-`),
      );
      expect(r.stdout).toContain('sleeps skipped: []');
      expect(await names(client.listPropertiesOfKeys())).toEqual([]);
      expect(await names(client.listDeletedKeys())).toEqual([`ECKeyName${suffix}`, `rsaKeyName${suffix}`]);
      const ec = await client.getDeletedKey(`ECKeyName${suffix}`);
      expect(ec.properties.enabled).toBe(false);
      const expiresIn = ec.properties.expiresOn!.getTime() - Date.now();
      expect(expiresIn).toBeGreaterThan(364 * DAY);
      expect(expiresIn).toBeLessThan(366 * DAY);
      const rsa = await client.getDeletedKey(`rsaKeyName${suffix}`);
      expect(rsa.keyOperations?.sort()).toEqual([
        'decrypt',
        'encrypt',
        'sign',
        'unwrapKey',
        'verify',
        'wrapKey',
      ]);
    }, 60_000);
  }

  for (const [file, suffix] of [
    ['list_operations.py', ''],
    ['list_operations_async.py', 'Async'],
  ] as const) {
    it(`${file}: list keys, list versions, list deleted keys`, async () => {
      const { run: r, client, url } = await runSample(file);
      expect(r.stdout).toContain(
        `Key with name 'rsaKeyName${suffix}' with type 'JsonWebKeyType.RSA' was found.`,
      );
      expect(r.stdout).toContain(
        `Key with name 'ecKeyName${suffix}' with type 'JsonWebKeyType.EC' was found.`,
      );
      expect(
        r.stdout.match(new RegExp(`'rsaKeyName${suffix}' has version: '[0-9a-f]{32}'`, 'g')),
      ).toHaveLength(2);
      for (const name of [`ecKeyName${suffix}`, `rsaKeyName${suffix}`]) {
        expect(r.stdout).toContain(`Key with name '${name}' has recovery id '${url}/deletedkeys/${name}'`);
      }
      expect(await names(client.listDeletedKeys())).toEqual([`ecKeyName${suffix}`, `rsaKeyName${suffix}`]);
      const rsa = await client.getDeletedKey(`rsaKeyName${suffix}`);
      expect(rsa.key?.n).toHaveLength(384); // the second version, 3072 bits, is the current one
    }, 60_000);
  }

  for (const [file, suffix] of [
    ['backup_restore_operations.py', ''],
    ['backup_restore_operations_async.py', 'Async'],
  ] as const) {
    it(`${file}: back up, delete, purge, restore from the backup`, async () => {
      const { run: r, client } = await runSample(file);
      expect(r.stdout).toContain(`Backup created for key with name 'keyName${suffix}'.`);
      expect(r.stdout).toContain(`Purged key with name 'keyName${suffix}'`);
      expect(r.stdout).toContain(`Restored key with name 'keyName${suffix}'`);
      // The sample's own wait for the service's purge; the server purged before answering.
      expect(r.stdout).toContain('sleeps skipped: [60]');
      expect(await names(client.listPropertiesOfKeys())).toEqual([`keyName${suffix}`]);
      expect(await names(client.listDeletedKeys())).toEqual([]);
    }, 60_000);
  }

  for (const [file, suffix] of [
    ['recover_purge_operations.py', ''],
    ['recover_purge_operations_async.py', 'Async'],
  ] as const) {
    it(`${file}: delete, recover, delete again, purge`, async () => {
      const { run: r, client } = await runSample(file);
      expect(r.stdout).toContain(`Recovered key 'rsaKeyName${suffix}'`);
      expect(r.stdout).toContain(`Purged 'ecKeyName${suffix}'`);
      expect(r.stdout).toContain(`Purged 'rsaKeyName${suffix}'`);
      expect(await names(client.listPropertiesOfKeys())).toEqual([]);
      expect(await names(client.listDeletedKeys())).toEqual([]);
    }, 60_000);
  }

  for (const [file, name] of [
    ['key_rotation.py', 'rotation-sample-key'],
    ['key_rotation_async.py', 'rotation-sample-key-async'],
  ] as const) {
    it(`${file}: rotation policy set, read, written back, on-demand rotation`, async () => {
      const { run: r, client } = await runSample(file);
      expect(r.stdout).toMatch(
        /Created a new key rotation policy: (KeyRotationPolicyAction\.)?rotate after P2M/i,
      );
      expect(r.stdout).toMatch(/New policy action: (KeyRotationPolicyAction\.)?notify P10D before expiry/i);
      expect(r.stdout).toMatch(/Rotated the key on-demand; new version is [0-9a-f]{32}/);
      expect(await names(client.listDeletedKeys())).toEqual([name]);
      const deleted = await client.getDeletedKey(name);
      const rotated = /on-demand; new version is ([0-9a-f]{32})/.exec(r.stdout)![1];
      expect(deleted.properties.version).toBe(rotated);
    }, 60_000);
  }

  it('send_request.py: a request the sample builds itself, sent through the client pipeline', async () => {
    const { run: r, client, url } = await runSample('send_request.py');
    expect(r.stdout).toMatch(new RegExp(`Key with ID ${url}/keys/sampleKey/[0-9a-f]{32} was found\\.`));
    expect(await names(client.listDeletedKeys())).toEqual(['sampleKey']);
  }, 60_000);
});

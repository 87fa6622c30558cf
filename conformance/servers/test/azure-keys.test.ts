import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AzureKeyVaultServer, startAzureKeyVaultServer } from '../src/azure/index.js';
import { ADMIN, failure, keyClient, PRINCIPALS, READER } from './azure-helpers.js';

let server: AzureKeyVaultServer;
beforeAll(async () => {
  server = await startAzureKeyVaultServer({ principals: PRINCIPALS });
});
afterAll(() => server?.stop());

describe('create key (POST /keys/{name}/create)', () => {
  it('creates RSA and EC keys of every supported size and curve', async () => {
    const client = keyClient(server, ADMIN);
    for (const size of [2048, 3072]) {
      const key = await client.createRsaKey(`rsa-${size}`, { keySize: size });
      expect(key.keyType).toBe('RSA');
      expect(key.key?.n?.length).toBe(size / 8);
      expect(key.properties.version).toMatch(/^[0-9a-f]{32}$/);
      expect(key.id).toBe(`${server.url}/keys/rsa-${size}/${key.properties.version}`);
      expect(key.keyOperations).toEqual(['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey']);
      expect(key.properties.recoveryLevel).toBe('Recoverable+Purgeable');
    }
    for (const curve of ['P-256', 'P-384', 'P-521', 'P-256K'] as const) {
      const key = await client.createEcKey(`ec-${curve}`, { curve });
      expect(key.keyType).toBe('EC');
      expect(key.key?.crv).toBe(curve);
      expect(key.keyOperations).toEqual(['sign', 'verify']);
    }
  });

  it('a second create adds a version', async () => {
    const client = keyClient(server, ADMIN);
    const a = await client.createRsaKey('two-versions');
    const b = await client.createRsaKey('two-versions', { tags: { purpose: 'test' }, enabled: false });
    expect(b.properties.version).not.toBe(a.properties.version);
    expect(b.properties.enabled).toBe(false);
    expect(b.properties.tags).toEqual({ purpose: 'test' });
  });

  it('rejects what the service rejects', async () => {
    const client = keyClient(server, ADMIN);
    expect(await failure(client.createRsaKey('bad-size', { keySize: 1024 }))).toMatchObject({
      status: 400,
      code: 'BadParameter',
    });
    expect(await failure(client.createKey('bad-type', 'oct-HSM'))).toMatchObject({
      status: 400,
      code: 'BadParameter',
    });
    expect(await failure(client.createKey('bad-type', 'RSA-HSM'))).toMatchObject({
      status: 400,
      code: 'BadParameter',
    });
    expect(await failure(client.createEcKey('bad-curve', { curve: 'P-192' as 'P-256' }))).toMatchObject({
      status: 400,
    });
    expect(await failure(client.createEcKey('bad-ops', { keyOps: ['encrypt'] }))).toMatchObject({
      status: 400,
    });
    expect(await failure(client.createRsaKey('bad_name'))).toMatchObject({
      status: 400,
      code: 'BadParameter',
    });
    expect(await failure(keyClient(server, READER).createRsaKey('no-permission'))).toMatchObject({
      status: 403,
      code: 'Forbidden',
    });
  });
});

describe('get key (GET /keys/{name}[/{version}])', () => {
  it('returns the latest version or a named one, never private material', async () => {
    const client = keyClient(server, ADMIN);
    const first = await client.createEcKey('get-me');
    const second = await client.createEcKey('get-me');
    expect((await client.getKey('get-me')).properties.version).toBe(second.properties.version);
    const old = await client.getKey('get-me', { version: first.properties.version ?? '' });
    expect(old.key?.x).toEqual(first.key?.x);
    expect(old.key?.d).toBeUndefined();
    // Names are case-insensitive.
    expect((await client.getKey('GET-ME')).properties.version).toBe(second.properties.version);
    const reader = await keyClient(server, READER).getKey('get-me');
    expect(reader.id).toBe(second.id);
  });

  it('404 KeyNotFound for a missing key or version', async () => {
    const client = keyClient(server, ADMIN);
    expect(await failure(client.getKey('nope'))).toMatchObject({ status: 404, code: 'KeyNotFound' });
    await client.createEcKey('has-one');
    expect(await failure(client.getKey('has-one', { version: '0'.repeat(32) }))).toMatchObject({
      status: 404,
      code: 'KeyNotFound',
    });
  });
});

describe('import key (PUT /keys/{name})', () => {
  it('imports an RSA JWK and serves the same public key', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = privateKey.export({ format: 'jwk' });
    const b = (s: string | undefined) => Buffer.from(s ?? '', 'base64url');
    const client = keyClient(server, ADMIN);
    const key = await client.importKey('imported', {
      kty: 'RSA',
      n: b(jwk.n),
      e: b(jwk.e),
      d: b(jwk.d),
      p: b(jwk.p),
      q: b(jwk.q),
      dp: b(jwk.dp),
      dq: b(jwk.dq),
      qi: b(jwk.qi),
      keyOps: ['sign', 'verify'],
    });
    expect(Buffer.from(key.key?.n ?? []).toString('base64url')).toBe(jwk.n);
    expect(key.keyOperations).toEqual(['sign', 'verify']);
    expect(
      await failure(client.importKey('pub-only', { kty: 'RSA', n: b(jwk.n), e: b(jwk.e) })),
    ).toMatchObject({ status: 400, code: 'BadParameter' });
    expect(
      await failure(client.importKey('oct-in-vault', { kty: 'oct', k: Buffer.alloc(32, 1) })),
    ).toMatchObject({ status: 400 });
  });
});

describe('update key (PATCH /keys/{name}/{version})', () => {
  it('changes enabled, exp, nbf, tags and key_ops', async () => {
    const client = keyClient(server, ADMIN);
    const created = await client.createRsaKey('update-me');
    const expiresOn = new Date(Math.floor(Date.now() / 1000 + 86_400) * 1000);
    const notBefore = new Date(Math.floor(Date.now() / 1000 - 60) * 1000);
    const updated = await client.updateKeyProperties('update-me', created.properties.version ?? '', {
      enabled: false,
      expiresOn,
      notBefore,
      tags: { env: 'test' },
      keyOps: ['encrypt', 'decrypt'],
    });
    expect(updated.properties.enabled).toBe(false);
    expect(updated.properties.expiresOn).toEqual(expiresOn);
    expect(updated.properties.notBefore).toEqual(notBefore);
    expect(updated.properties.tags).toEqual({ env: 'test' });
    expect(updated.keyOperations).toEqual(['encrypt', 'decrypt']);
    expect(
      await failure(
        client.updateKeyProperties('update-me', created.properties.version ?? '', {
          keyOps: ['sign', 'bogus' as 'sign'],
        }),
      ),
    ).toMatchObject({ status: 400 });
    expect(
      await failure(
        keyClient(server, READER).updateKeyProperties('update-me', created.properties.version ?? '', {
          enabled: true,
        }),
      ),
    ).toMatchObject({ status: 403 });
    expect(await failure(client.updateKeyProperties('missing', '', { enabled: true }))).toMatchObject({
      status: 404,
    });
  });
});

describe('list keys and versions (GET /keys, /keys/{name}/versions)', () => {
  it('pages with nextLink and maxresults', async () => {
    const other = await startAzureKeyVaultServer({ principals: PRINCIPALS });
    try {
      const client = keyClient(other, ADMIN);
      for (let i = 0; i < 5; i++) await client.createEcKey(`list-${i}`);
      for (let i = 0; i < 3; i++) await client.createEcKey('list-0');
      const pages: number[] = [];
      for await (const page of client.listPropertiesOfKeys().byPage({ maxPageSize: 2 }))
        pages.push(page.length);
      expect(pages).toEqual([2, 2, 1]);
      const names: string[] = [];
      for await (const k of client.listPropertiesOfKeys()) names.push(k.name);
      expect(names).toEqual(['list-0', 'list-1', 'list-2', 'list-3', 'list-4']);
      const versions: string[] = [];
      for await (const page of client.listPropertiesOfKeyVersions('list-0').byPage({ maxPageSize: 3 })) {
        for (const v of page) versions.push(v.version ?? '');
      }
      expect(versions).toHaveLength(4);
      expect(new Set(versions).size).toBe(4);
      const keysPage = client.listPropertiesOfKeys().byPage({ maxPageSize: 26 });
      expect(await failure(keysPage.next())).toMatchObject({ status: 400, code: 'BadParameter' });
    } finally {
      await other.stop();
    }
  });
});

import { KeyClient } from '@azure/keyvault-keys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AzureKeyVaultServer,
  DEFAULT_AZURE_TOKEN,
  startAzureKeyVaultServer,
} from '../src/azure/index.js';
import { ADMIN, failure, keyClient, PRINCIPALS, raw, sdkOptions, staticToken } from './azure-helpers.js';

let server: AzureKeyVaultServer;
beforeAll(async () => {
  server = await startAzureKeyVaultServer({ principals: PRINCIPALS, tenantId: 'tenant-1' });
});
afterAll(() => server?.stop());

const V = 'api-version=2025-07-01';

describe('challenge authentication', () => {
  it('no bearer token: 401 with the challenge the SDKs parse', async () => {
    const res = await raw(server, 'GET', `/keys?${V}`);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe(
      'Bearer authorization="https://login.microsoftonline.com/tenant-1", resource="https://vault.azure.net"',
    );
    expect(res.body).toEqual({
      error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' },
    });
    expect((await raw(server, 'GET', `/keys?${V}`, { token: ADMIN })).status).toBe(200);
  });

  it('a Managed HSM names its own resource', async () => {
    const hsm = await startAzureKeyVaultServer({ mode: 'hsm' });
    try {
      const res = await raw(hsm, 'GET', `/keys?${V}`);
      expect(res.status).toBe(401);
      expect(String(res.headers['www-authenticate'])).toContain('resource="https://managedhsm.azure.net"');
      expect(res.body).toEqual({});
      // Started without principals, the server accepts its default token with every permission.
      expect((await raw(hsm, 'GET', `/keys?${V}`, { token: DEFAULT_AZURE_TOKEN })).status).toBe(200);
    } finally {
      await hsm.stop();
    }
  });

  it('an unknown principal is 403 without echoing its token', async () => {
    const res = await raw(server, 'GET', `/keys?${V}`, { token: 'secret-token-value' });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({
      error: { code: 'Forbidden', innererror: { code: 'ForbiddenByPolicy' } },
    });
    expect(JSON.stringify(res.body)).not.toContain('secret-token-value');
  });
});

describe('api-version and request checks', () => {
  it('a missing or unknown api-version is 400 BadParameter; 7.x versions are accepted', async () => {
    expect(await raw(server, 'GET', '/keys', { token: ADMIN })).toMatchObject({
      status: 400,
      body: { error: { code: 'BadParameter' } },
    });
    expect(await raw(server, 'GET', '/keys?api-version=2099-01-01', { token: ADMIN })).toMatchObject({
      status: 400,
    });
    for (const v of ['7.4', '7.5', '7.6']) {
      expect((await raw(server, 'GET', `/keys?api-version=${v}`, { token: ADMIN })).status).toBe(200);
    }
    const client = new KeyClient(server.url, staticToken(ADMIN), {
      ...sdkOptions(server),
      serviceVersion: '7.5',
    });
    await expect(client.createEcKey('old-api')).resolves.toBeDefined();
  });

  it('unknown routes, bad JSON and a missing kty are 400', async () => {
    expect(await raw(server, 'GET', `/keys/%E0%A4%A?${V}`, { token: ADMIN })).toMatchObject({ status: 400 });
    expect(await raw(server, 'GET', `/secrets/x?${V}`, { token: ADMIN })).toMatchObject({
      status: 400,
      body: { error: { code: 'BadParameter' } },
    });
    expect(await raw(server, 'POST', `/keys/k/create?${V}`, { token: ADMIN, body: [] })).toMatchObject({
      status: 400,
    });
    expect(
      await raw(server, 'POST', `/keys/k/create?${V}`, { token: ADMIN, body: { key_size: 2048 } }),
    ).toMatchObject({ status: 400 });
    expect(
      await raw(server, 'POST', `/keys/k/create?${V}`, {
        token: ADMIN,
        body: { kty: 'RSA', attributes: { exp: 'tomorrow' } },
      }),
    ).toMatchObject({ status: 400 });
  });

  it('the key bundle on the wire: public JWK, Unix-second attributes, no private parts', async () => {
    const res = await raw(server, 'POST', `/keys/wire/create?${V}`, {
      token: ADMIN,
      body: { kty: 'RSA', key_size: 2048, tags: { t: 'v' } },
    });
    expect(res.status).toBe(200);
    const key = res.body.key as Record<string, unknown>;
    expect(Object.keys(key).sort()).toEqual(['e', 'key_ops', 'kid', 'kty', 'n']);
    expect(key.kid).toMatch(new RegExp(`^${server.url}/keys/wire/[0-9a-f]{32}$`));
    const attributes = res.body.attributes as Record<string, unknown>;
    expect(Number.isInteger(attributes.created)).toBe(true);
    expect(attributes).toMatchObject({
      enabled: true,
      recoveryLevel: 'Recoverable+Purgeable',
      recoverableDays: 90,
    });
    expect(res.body.tags).toEqual({ t: 'v' });
    expect(res.headers['x-ms-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    // An empty version segment addresses the latest version, as the SDKs send it.
    expect((await raw(server, 'GET', `/keys/wire/?${V}`, { token: ADMIN })).body.key).toEqual(key);
    const enc = await raw(server, 'POST', `/keys/wire//encrypt?${V}`, {
      token: ADMIN,
      body: { alg: 'RSA-OAEP', value: 'aGk' },
    });
    expect(enc.body.kid).toBe(key.kid);
    expect(
      await raw(server, 'POST', `/keys/wire//encrypt?${V}`, {
        token: ADMIN,
        body: { alg: 'RSA-OAEP', value: '%%%' },
      }),
    ).toMatchObject({ status: 400 });
  });
});

describe('fault injection and the clock', () => {
  it('throttling answers 429 Throttled with Retry-After; the SDK retries through it', async () => {
    server.faults.set({ throttle: { requests: 1, retryAfterSeconds: 3 } });
    const res = await raw(server, 'GET', `/keys?${V}`, { token: ADMIN });
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toBe('3');
    expect(res.body).toMatchObject({ error: { code: 'Throttled' } });

    server.faults.set({ throttle: { requests: 1 } });
    expect(await failure(keyClient(server, ADMIN).createEcKey('throttled'))).toMatchObject({ status: 429 });

    server.faults.set({ throttle: { requests: 2, retryAfterSeconds: 0 } });
    const retrying = new KeyClient(server.url, staticToken(ADMIN), {
      ...sdkOptions(server),
      retryOptions: { maxRetries: 3 },
    });
    await expect(retrying.createEcKey('after-throttle')).resolves.toBeDefined();
  });

  it('dropped connections fail the call without an answer, then the server serves again', async () => {
    const client = keyClient(server, ADMIN);
    await client.createEcKey('dropped');
    server.faults.set({ dropConnections: 1 });
    const e = await failure(client.getKey('dropped'));
    expect(e.status).toBeUndefined();
    await expect(client.getKey('dropped')).resolves.toBeDefined();
  });

  it('added latency outlasts a short client deadline', async () => {
    const client = keyClient(server, ADMIN);
    await client.createEcKey('slow');
    server.faults.set({ latencyMs: 400 });
    try {
      const e = await failure(client.getKey('slow', { abortSignal: AbortSignal.timeout(50) }));
      expect(e.status).toBeUndefined();
    } finally {
      server.faults.clear();
    }
  });

  it('the admin routes set faults and advance the clock', async () => {
    const before = (await raw(server, 'GET', '/_keyport/clock')).body.now as number;
    const after = (await raw(server, 'POST', '/_keyport/clock', { body: { advanceSeconds: 3600 } })).body
      .now as number;
    expect(after - before).toBeGreaterThanOrEqual(3600);
    expect(
      (await raw(server, 'POST', '/_keyport/faults', { body: { throttle: { requests: 1 } } })).status,
    ).toBe(204);
    expect((await raw(server, 'GET', `/keys?${V}`, { token: ADMIN })).status).toBe(429);
    expect((await raw(server, 'GET', `/keys?${V}`, { token: ADMIN })).status).toBe(200);
    expect((await raw(server, 'POST', '/_keyport/faults', { body: { latencyMs: -1 } })).status).toBe(400);
  });
});

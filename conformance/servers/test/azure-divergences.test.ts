import type { KeyClient } from '@azure/keyvault-keys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AZURE_KEYVAULT_API_VERSIONS,
  type AzureKeyVaultServer,
  startAzureKeyVaultServer,
} from '../src/azure/index.js';
import { ADMIN, failure, keyClient, PRINCIPALS, raw } from './azure-helpers.js';

// One test per Key Vault divergence that issue #25 lists, through the official JS client where
// it can express the request and through bare HTTPS where it cannot.
let server: AzureKeyVaultServer;
let client: KeyClient;
beforeAll(async () => {
  server = await startAzureKeyVaultServer({ principals: PRINCIPALS });
  client = keyClient(server, ADMIN);
});
afterAll(() => server?.stop());

describe('Key Vault server: divergences from the service, fixed', () => {
  it('accepts every api-version the current official clients send, incl. 2026-01-01-preview', async () => {
    for (const v of [
      '2026-04-01',
      '2026-01-01-preview',
      '2025-07-01',
      '7.6',
      '7.5',
      '7.4',
      '7.3',
      '7.2',
      '7.1',
      '7.0',
      '2016-10-01',
    ]) {
      expect(AZURE_KEYVAULT_API_VERSIONS).toContain(v);
      const res = await raw(server, 'GET', `/keys?api-version=${v}`, { token: ADMIN });
      expect(res.status, v).toBe(200);
    }
    const created = await raw(server, 'POST', '/keys/preview-api/create?api-version=2026-01-01-preview', {
      token: ADMIN,
      body: { kty: 'EC', crv: 'P-256' },
    });
    expect(created.status).toBe(200);
    expect((created.body.key as { kid: string }).kid).toMatch(/\/keys\/preview-api\/[0-9a-f]{32}$/);
  });

  it("an unknown api-version gets the service's error shape", async () => {
    const res = await raw(server, 'GET', '/keys?api-version=2099-01-01', { token: ADMIN });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      error: {
        code: 'BadParameter',
        message:
          'The specified version (2099-01-01) is not recognized. Consider using the latest supported version (2026-04-01).',
      },
    });
    const long = await raw(server, 'GET', `/keys?api-version=${'9'.repeat(10_000)}`, { token: ADMIN });
    expect(long.status).toBe(400);
    expect(JSON.stringify(long.body).length).toBeLessThan(400);
  });

  it('a 409 on a soft-deleted name carries innererror.code ObjectIsDeletedButRecoverable', async () => {
    await client.createEcKey('soft-deleted');
    await (await client.beginDeleteKey('soft-deleted', { intervalInMs: 10 })).pollUntilDone();
    const res = await raw(server, 'POST', '/keys/soft-deleted/create?api-version=2025-07-01', {
      token: ADMIN,
      body: { kty: 'EC' },
    });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({
      error: { code: 'Conflict', innererror: { code: 'ObjectIsDeletedButRecoverable' } },
    });
    const viaSdk = await failure(client.createEcKey('soft-deleted'));
    expect(viaSdk.status).toBe(409);
    expect(viaSdk.message).toContain('deleted but recoverable');
  });

  it('PATCH /keys/{name} without a version segment updates the latest version', async () => {
    const key = await client.createRsaKey('patch-no-version');
    const res = await raw(server, 'PATCH', '/keys/patch-no-version?api-version=2025-07-01', {
      token: ADMIN,
      body: { tags: { env: 'test' }, attributes: { enabled: false } },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ tags: { env: 'test' }, attributes: { enabled: false } });
    const got = await client.getKey('patch-no-version');
    expect(got.properties.version).toBe(key.properties.version);
    expect(got.properties.enabled).toBe(false);
    expect(got.properties.tags).toEqual({ env: 'test' });
    // And the SDK's own form (empty version segment) still works.
    await client.updateKeyProperties('patch-no-version', { enabled: true });
    expect((await client.getKey('patch-no-version')).properties.enabled).toBe(true);
  });

  it('expiry and not-before are bounded to what the service can store', async () => {
    const create = (attributes: object) =>
      raw(server, 'POST', '/keys/bounded/create?api-version=2025-07-01', {
        token: ADMIN,
        body: { kty: 'EC', attributes },
      });
    for (const bad of [
      { exp: 253_402_300_800 },
      { nbf: 1e20 },
      { exp: -62_135_596_801 },
      { exp: 1.5 },
      { nbf: '2030-01-01' },
    ]) {
      const res = await create(bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(res.body).toMatchObject({ error: { code: 'BadParameter' } });
    }
    expect((await create({ exp: 253_402_300_799, nbf: -62_135_596_800 })).status).toBe(200);
    // (The JS client truncates seconds to int32, so it cannot itself send dates after 2038.)
    const far = new Date('2038-01-01T00:00:00Z');
    const k = await client.createEcKey('bounded-sdk', { expiresOn: far });
    expect(k.properties.expiresOn?.toISOString()).toBe(far.toISOString());
  });

  it('rotation-policy durations are bounded', async () => {
    await client.createRsaKey('rot-bounds');
    const put = (body: object) =>
      raw(server, 'PUT', '/keys/rot-bounds/rotationpolicy?api-version=2025-07-01', { token: ADMIN, body });
    const rotate = (trigger: object, expiryTime?: string) =>
      put({
        lifetimeActions: [{ trigger, action: { type: 'Rotate' } }],
        ...(expiryTime !== undefined && { attributes: { expiryTime } }),
      });
    expect((await rotate({ timeAfterCreate: 'P90D' }, 'P1Y')).status).toBe(200);
    for (const [trigger, expiry] of [
      [{ timeAfterCreate: 'P6D' }, undefined],
      [{ timeAfterCreate: 'P99999999999Y' }, undefined],
      [{ timeAfterCreate: 'P9000Y' }, undefined],
      [{ timeAfterCreate: 'P90D' }, 'P27D'],
      [{ timeAfterCreate: 'P90D' }, 'P9000Y'],
      [{ timeBeforeExpiry: 'P1Y' }, 'P6M'],
      [{ timeAfterCreate: 'P1DT' }, undefined],
      [{ timeAfterCreate: `P${'1'.repeat(500)}D` }, undefined],
      [{ timeAfterCreate: 30 }, undefined],
    ] as const) {
      const res = await rotate(trigger, expiry);
      expect(res.status, JSON.stringify([trigger, expiry])).toBe(400);
      expect(res.body).toMatchObject({ error: { code: 'BadParameter' } });
    }
    const policy = await client.getKeyRotationPolicy('rot-bounds');
    expect(policy.expiresIn).toBe('P1Y');
  });
});

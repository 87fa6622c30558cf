// One test per checkable promise of README-azure.md and README-gcp.md that no other test file
// held to account (limits, bounds and error shapes), each through the server's real wire path.
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AzureKeyVaultServer, startAzureKeyVaultServer } from '../src/azure/index.js';
import { startCloudKmsServer } from '../src/gcp/index.js';
import { ADMIN, CRYPTO_ONLY, PRINCIPALS, raw } from './azure-helpers.js';
import { expectCode, grpc, type Harness, LOCATION, newKeyRing, startHarness } from './gcp-support.js';

const V = 'api-version=2025-07-01';

/** A bare HTTPS call with the body sent exactly as given (no JSON encoding). */
function rawText(
  server: AzureKeyVaultServer,
  method: string,
  path: string,
  body: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${server.url}${path}`,
      {
        method,
        ca: readFileSync(server.caFile),
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
          });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('README-azure.md promises', () => {
  let vault: AzureKeyVaultServer;
  let hsm: AzureKeyVaultServer;
  beforeAll(async () => {
    [vault, hsm] = await Promise.all([
      startAzureKeyVaultServer({ principals: PRINCIPALS }),
      startAzureKeyVaultServer({ mode: 'hsm', principals: PRINCIPALS }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([vault?.stop(), hsm?.stop()]);
  });

  const create = (server: AzureKeyVaultServer, name: string, body: object) =>
    raw(server, 'POST', `/keys/${name}/create?${V}`, { token: ADMIN, body });

  it('a key has at most 15 tags, on create and on update (16 is 400 BadParameter)', async () => {
    const tags = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`t${i}`, 'v']));
    expect((await create(vault, 'tags-15', { kty: 'EC', tags: tags(15) })).status).toBe(200);
    expect(await create(vault, 'tags-16', { kty: 'EC', tags: tags(16) })).toMatchObject({
      status: 400,
      body: { error: { code: 'BadParameter' } },
    });
    expect(
      await raw(vault, 'PATCH', `/keys/tags-15?${V}`, { token: ADMIN, body: { tags: tags(16) } }),
    ).toMatchObject({ status: 400, body: { error: { code: 'BadParameter' } } });
  });

  it('key names are 1 to 127 letters, digits and dashes', async () => {
    expect((await create(vault, 'n'.repeat(127), { kty: 'EC' })).status).toBe(200);
    expect(await create(vault, 'n'.repeat(128), { kty: 'EC' })).toMatchObject({
      status: 400,
      body: { error: { code: 'BadParameter' } },
    });
  });

  it('request bodies are limited to 1 MiB (400 beyond)', async () => {
    // Valid JSON padded with whitespace to the exact size: the limit, not the content, decides.
    const padded = (size: number) => {
      const json = JSON.stringify({ kty: 'EC' });
      return json + ' '.repeat(size - json.length);
    };
    const at = await rawText(vault, 'POST', `/keys/body-limit/create?${V}`, padded(1 << 20));
    expect(at.status).toBe(200);
    const over = await rawText(vault, 'POST', `/keys/body-limit/create?${V}`, padded((1 << 20) + 1));
    expect(over).toMatchObject({ status: 400, body: { error: { code: 'BadParameter' } } });
  });

  it('maxresults defaults to 25 and must be 1 to 25', async () => {
    const server = await startAzureKeyVaultServer({ principals: PRINCIPALS });
    try {
      for (let i = 0; i < 26; i++) await create(server, `page-${i}`, { kty: 'EC' });
      const first = await raw(server, 'GET', `/keys?${V}`, { token: ADMIN });
      expect(first.status).toBe(200);
      expect(first.body.value).toHaveLength(25);
      expect(first.body.nextLink).toContain('maxresults=25');
      expect((await raw(server, 'GET', `/keys?${V}&maxresults=1`, { token: ADMIN })).body.value).toHaveLength(
        1,
      );
      expect(await raw(server, 'GET', `/keys?${V}&maxresults=0`, { token: ADMIN })).toMatchObject({
        status: 400,
        body: { error: { code: 'BadParameter' } },
      });
      // maxresults is an int32: only decimal digits are a number (Number() took these as 10, 5, 3, 2).
      for (const bad of ['1e1', '0x5', '0b11', '2.0', '0o2', 'Infinity']) {
        expect(await raw(server, 'GET', `/keys?${V}&maxresults=${bad}`, { token: ADMIN }), bad).toMatchObject(
          {
            status: 400,
            body: { error: { code: 'BadParameter' } },
          },
        );
      }
      expect(
        (await raw(server, 'GET', `/keys?${V}&maxresults=%2B2`, { token: ADMIN })).body.value,
      ).toHaveLength(2);
    } finally {
      await server.stop();
    }
  });

  it('key-state refusals are 403 Forbidden with innererror KeyDisabled, KeyOperationForbidden, KeyExpired, KeyNotYetValid', async () => {
    const server = await startAzureKeyVaultServer({ principals: PRINCIPALS });
    try {
      const now = server.clock.nowSeconds();
      const sign = (name: string) =>
        raw(server, 'POST', `/keys/${name}//sign?${V}`, {
          token: CRYPTO_ONLY,
          body: { alg: 'ES256', value: Buffer.alloc(32).toString('base64url') },
        });
      const cases = [
        [
          'disabled',
          { attributes: { enabled: false } },
          'KeyDisabled',
          'Operation sign is not allowed on a disabled key.',
        ],
        [
          'verify-only',
          { key_ops: ['verify'] },
          'KeyOperationForbidden',
          'Operation sign is not permitted on this key.',
        ],
        ['expired', { attributes: { exp: now - 60 } }, 'KeyExpired', undefined],
        ['not-yet', { attributes: { nbf: now + 3600 } }, 'KeyNotYetValid', undefined],
      ] as const;
      for (const [name, extra, inner, message] of cases) {
        expect((await create(server, name, { kty: 'EC', ...extra })).status, name).toBe(200);
        const res = await sign(name);
        expect(res, name).toMatchObject({
          status: 403,
          body: { error: { code: 'Forbidden', innererror: { code: inner } } },
        });
        if (message) expect((res.body.error as { message: string }).message).toBe(message);
      }
    } finally {
      await server.stop();
    }
  });

  it('random bytes: count 1 to 128, else 400 with the service text', async () => {
    const rng = (count: number) => raw(hsm, 'POST', `/rng?${V}`, { token: ADMIN, body: { count } });
    expect((await rng(1)).body.value).toBeTypeOf('string');
    expect(Buffer.from(String((await rng(128)).body.value), 'base64url')).toHaveLength(128);
    for (const count of [0, 129]) {
      expect(await rng(count)).toMatchObject({
        status: 400,
        body: {
          error: {
            code: 'BadParameter',
            message: 'GetRandomBytesRequest: count cannot be greater than 128 or less than 1',
          },
        },
      });
    }
  });

  it('key release and attestation are 400 BadParameter, 404 when the key is missing', async () => {
    expect((await create(vault, 'no-release', { kty: 'EC' })).status).toBe(200);
    const bad = { status: 400, body: { error: { code: 'BadParameter' } } };
    expect(
      await raw(vault, 'POST', `/keys/no-release/release?${V}`, { token: ADMIN, body: { target: 'x' } }),
    ).toMatchObject(bad);
    expect(await raw(vault, 'GET', `/keys/no-release/attestation?${V}`, { token: ADMIN })).toMatchObject(bad);
    expect(
      await raw(vault, 'POST', `/keys/missing/release?${V}`, { token: ADMIN, body: { target: 'x' } }),
    ).toMatchObject({ status: 404 });
    expect(await raw(vault, 'GET', `/keys/missing/attestation?${V}`, { token: ADMIN })).toMatchObject({
      status: 404,
    });
  });

  it('2026-01-01-preview external keys and secure wrap/unwrap are 400 BadParameter', async () => {
    const preview = 'api-version=2026-01-01-preview';
    const bad = { status: 400, body: { error: { code: 'BadParameter' } } };
    expect(
      await raw(vault, 'POST', `/keys/external/create?${preview}`, {
        token: ADMIN,
        body: { attributes: { external_key: { uri: 'https://example.invalid/key' } } },
      }),
    ).toMatchObject(bad);
    expect((await create(vault, 'secure-wrap', { kty: 'RSA' })).status).toBe(200);
    for (const op of ['securewrapkey', 'secureunwrapkey']) {
      expect(
        await raw(vault, 'POST', `/keys/secure-wrap//${op}?${preview}`, {
          token: ADMIN,
          body: { alg: 'RSA-OAEP-256', value: 'AAAA' },
        }),
      ).toMatchObject(bad);
    }
  });

  it('restore over a soft-deleted name is 409 Conflict', async () => {
    expect((await create(vault, 'restore-deleted', { kty: 'EC' })).status).toBe(200);
    const backup = await raw(vault, 'POST', `/keys/restore-deleted/backup?${V}`, { token: ADMIN });
    expect((await raw(vault, 'DELETE', `/keys/restore-deleted?${V}`, { token: ADMIN })).status).toBe(200);
    expect(
      await raw(vault, 'POST', `/keys/restore?${V}`, { token: ADMIN, body: { value: backup.body.value } }),
    ).toMatchObject({ status: 409, body: { error: { code: 'Conflict' } } });
  });

  it("another mode's backup blob does not restore (400), even with the same backup secret", async () => {
    const backupSecret = Buffer.alloc(32, 7);
    const [a, b] = await Promise.all([
      startAzureKeyVaultServer({ mode: 'hsm', principals: PRINCIPALS, backupSecret }),
      startAzureKeyVaultServer({ mode: 'vault', principals: PRINCIPALS, backupSecret }),
    ]);
    try {
      expect((await create(a, 'cross-mode', { kty: 'EC' })).status).toBe(200);
      const blob = (await raw(a, 'POST', `/keys/cross-mode/backup?${V}`, { token: ADMIN })).body.value;
      expect(
        await raw(b, 'POST', `/keys/restore?${V}`, { token: ADMIN, body: { value: blob } }),
      ).toMatchObject({
        status: 400,
        body: { error: { code: 'BadParameter' } },
      });
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('import: Hsm true gives the -HSM type; a key_hsm (BYOK) blob is 400', async () => {
    const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
    const put = (name: string, body: object) => raw(hsm, 'PUT', `/keys/${name}?${V}`, { token: ADMIN, body });
    const soft = await put('imported-soft', { key: jwk });
    expect((soft.body.key as { kty: string }).kty).toBe('EC');
    const hard = await put('imported-hsm', { key: jwk, Hsm: true });
    expect((hard.body.key as { kty: string }).kty).toBe('EC-HSM');
    expect(
      await put('imported-byok', { key: { kty: 'RSA-HSM', key_hsm: 'AAAA', kid: 'https://x/keys/kek/1' } }),
    ).toMatchObject({ status: 400, body: { error: { code: 'BadParameter' } } });
  });

  it('softDeleteRetentionDays is 7 to 90', async () => {
    await expect(startAzureKeyVaultServer({ softDeleteRetentionDays: 6 })).rejects.toThrow(/7 to 90/);
    await expect(startAzureKeyVaultServer({ softDeleteRetentionDays: 91 })).rejects.toThrow(/7 to 90/);
    const edge = await startAzureKeyVaultServer({ softDeleteRetentionDays: 90, principals: PRINCIPALS });
    try {
      expect((await create(edge, 'retained', { kty: 'EC' })).status).toBe(200);
      const deleted = await raw(edge, 'DELETE', `/keys/retained?${V}`, { token: ADMIN });
      expect(deleted.body).toMatchObject({
        attributes: { recoverableDays: 90, recoveryLevel: 'Recoverable+Purgeable' },
      });
    } finally {
      await edge.stop();
    }
  });

  it('a refused principal is named oid=<hash of the token>, never by the token', async () => {
    const token = 'token-without-rights-0123456789';
    const res = await raw(vault, 'GET', `/keys?${V}`, { token });
    expect(res.status).toBe(403);
    const message = (res.body.error as { message: string }).message;
    expect(message).toMatch(/'oid=[0-9a-f-]{8,}'/);
    expect(JSON.stringify(res.body)).not.toContain(token);
  });
});

describe('README-gcp.md promises', () => {
  let h: Harness;
  let ring: string;
  beforeAll(async () => {
    h = await startHarness();
    ring = await newKeyRing(h.client);
  });
  afterAll(() => h?.close());

  it('list page_size: 0 means 100, anything above 1000 is 1000', async () => {
    const parent = 'projects/paging-limits/locations/global';
    const ids = Array.from({ length: 1001 }, (_, i) => `r${String(i).padStart(4, '0')}`);
    for (let i = 0; i < ids.length; i += 100) {
      await Promise.all(
        ids.slice(i, i + 100).map((keyRingId) => h.client.createKeyRing({ parent, keyRingId, keyRing: {} })),
      );
    }
    const [byDefault, , rawDefault] = await h.client.listKeyRings({ parent }, { autoPaginate: false });
    expect(byDefault).toHaveLength(100);
    expect(rawDefault?.nextPageToken).toBeTruthy();
    expect(Number(rawDefault?.totalSize)).toBe(1001);
    const [capped, , rawCapped] = await h.client.listKeyRings(
      { parent, pageSize: 5000 },
      { autoPaginate: false },
    );
    expect(capped).toHaveLength(1000);
    expect(rawCapped?.nextPageToken).toBeTruthy();
  }, 60_000);

  it('list filters are at most 2048 characters', async () => {
    const filter = (length: number) => `name:${'a'.repeat(length - 'name:'.length)}`;
    const [none] = await h.client.listCryptoKeys(
      { parent: ring, filter: filter(2048) },
      { autoPaginate: false },
    );
    expect(none).toEqual([]);
    await expectCode(
      h.client.listCryptoKeys({ parent: ring, filter: filter(2049) }, { autoPaginate: false }),
      grpc.status.INVALID_ARGUMENT,
    );
  });

  it('list filters nest at most 32 deep', async () => {
    const nested = (depth: number) => `${'('.repeat(depth)}name:x${')'.repeat(depth)}`;
    await expect(
      h.client.listCryptoKeys({ parent: ring, filter: nested(32) }, { autoPaginate: false }),
    ).resolves.toBeDefined();
    await expectCode(
      h.client.listCryptoKeys({ parent: ring, filter: nested(33) }, { autoPaginate: false }),
      grpc.status.INVALID_ARGUMENT,
    );
  });

  it('Encrypt: additional authenticated data is at most 64 KiB', async () => {
    const [key] = await h.client.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'aad-limit',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT' },
    });
    const plaintext = Buffer.from('x');
    await expect(
      h.client.encrypt({
        name: key.name!,
        plaintext,
        additionalAuthenticatedData: Buffer.alloc(64 * 1024, 1),
      }),
    ).resolves.toBeDefined();
    await expectCode(
      h.client.encrypt({
        name: key.name!,
        plaintext,
        additionalAuthenticatedData: Buffer.alloc(64 * 1024 + 1, 1),
      }),
      grpc.status.INVALID_ARGUMENT,
    );
  });

  it('Encrypt with an HSM key: plaintext and AAD at most 8 KiB combined', async () => {
    const [key] = await h.client.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'hsm-limit',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT', versionTemplate: { protectionLevel: 'HSM' } },
    });
    const half = 4 * 1024;
    await expect(
      h.client.encrypt({
        name: key.name!,
        plaintext: Buffer.alloc(half, 1),
        additionalAuthenticatedData: Buffer.alloc(half, 2),
      }),
    ).resolves.toBeDefined();
    await expectCode(
      h.client.encrypt({
        name: key.name!,
        plaintext: Buffer.alloc(half, 1),
        additionalAuthenticatedData: Buffer.alloc(half + 1, 2),
      }),
      grpc.status.INVALID_ARGUMENT,
    );
  });

  it('rotation_period is at most 876,000 hours', async () => {
    const HOUR = 3600;
    const next = { seconds: Math.floor(Date.now() / 1000) + 86_400 };
    const make = (cryptoKeyId: string, hours: number) =>
      h.client.createCryptoKey({
        parent: ring,
        cryptoKeyId,
        cryptoKey: {
          purpose: 'ENCRYPT_DECRYPT',
          rotationPeriod: { seconds: hours * HOUR },
          nextRotationTime: next,
        },
      });
    const [ok] = await make('rotation-max', 876_000);
    expect(Number(ok.rotationPeriod?.seconds)).toBe(876_000 * HOUR);
    await expectCode(make('rotation-over', 876_001), grpc.status.INVALID_ARGUMENT);
  });

  it('destroy_scheduled_duration is at most 120 days', async () => {
    const DAY = 86_400;
    const make = (cryptoKeyId: string, seconds: number) =>
      h.client.createCryptoKey({
        parent: ring,
        cryptoKeyId,
        cryptoKey: { purpose: 'ENCRYPT_DECRYPT', destroyScheduledDuration: { seconds } },
      });
    const [ok] = await make('destroy-max', 120 * DAY);
    expect(Number(ok.destroyScheduledDuration?.seconds)).toBe(120 * DAY);
    await expectCode(make('destroy-over', 120 * DAY + 1), grpc.status.INVALID_ARGUMENT);
  });

  it('SetIamPolicy: a condition description over 256 characters is INVALID_ARGUMENT', async () => {
    const policy = (description: string) => ({
      resource: ring,
      policy: {
        version: 3,
        bindings: [
          {
            role: 'roles/cloudkms.viewer',
            members: ['user:alice@example.com'],
            condition: { title: 't', description, expression: `resource.name.startsWith("${ring}")` },
          },
        ],
      },
    });
    // Characters, not bytes: 256 two-byte characters are within the bound.
    await expect(
      h.client.setIamPolicy(policy('é'.repeat(256)) as Parameters<typeof h.client.setIamPolicy>[0]),
    ).resolves.toBeDefined();
    await expectCode(
      h.client.setIamPolicy(policy('d'.repeat(257)) as Parameters<typeof h.client.setIamPolicy>[0]),
      grpc.status.INVALID_ARGUMENT,
    );
  });

  it('GetOperation: the last 10,000 operations are kept, the oldest forgotten', async () => {
    const other = await startCloudKmsServer();
    try {
      const base = `${other.restUrl}/v1/projects/ops/locations/global/keyRings/r`;
      expect(
        (
          await fetch(`${other.restUrl}/v1/projects/ops/locations/global/keyRings?keyRingId=r`, {
            method: 'POST',
            body: '{}',
          })
        ).status,
      ).toBe(200);
      // DeleteCryptoKey of a key without versions is the cheapest call that makes an operation.
      const operation = async (i: number): Promise<string> => {
        const made = await fetch(`${base}/cryptoKeys?cryptoKeyId=k${i}&skipInitialVersionCreation=true`, {
          method: 'POST',
          body: JSON.stringify({ purpose: 'ENCRYPT_DECRYPT' }),
        });
        expect(made.status).toBe(200);
        const deleted = await fetch(`${base}/cryptoKeys/k${i}`, { method: 'DELETE' });
        expect(deleted.status).toBe(200);
        return ((await deleted.json()) as { name: string }).name;
      };
      const names: string[] = [];
      for (let i = 0; i < 10_001; i += 250) {
        const batch = Array.from({ length: Math.min(250, 10_001 - i) }, (_, j) => i + j);
        names.push(...(await Promise.all(batch.map(operation))));
      }
      expect(names).toHaveLength(10_001);
      const get = (name: string) => fetch(`${other.restUrl}/v1/${name}`);
      expect((await get(names[0]!)).status).toBe(404);
      expect((await get(names[1]!)).status).toBe(200);
      expect(await (await get(names[10_000]!)).json()).toMatchObject({ name: names[10_000], done: true });
    } finally {
      await other.stop();
    }
  }, 120_000);

  it('Locations metadata is hsm_available true, ekm_available false', async () => {
    // gax resolves [response, …] although the type says the response itself.
    const got: unknown = await h.client.getLocation({ name: LOCATION } as Parameters<
      typeof h.client.getLocation
    >[0]);
    const location = (Array.isArray(got) ? got[0] : got) as {
      metadata?: { type_url?: string; value?: Uint8Array };
    };
    const value = location.metadata?.value;
    expect(value).toBeDefined();
    const { protos } = await import('@google-cloud/kms');
    const metadata = protos.google.cloud.kms.v1.LocationMetadata.decode(value as Uint8Array);
    expect(metadata.hsmAvailable).toBe(true);
    expect(metadata.ekmAvailable).toBe(false);
    expect(location.metadata?.type_url).toBe('type.googleapis.com/google.cloud.kms.v1.LocationMetadata');
  });
});

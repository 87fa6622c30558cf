import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectCode, grpc, type Harness, newKeyRing, startHarness } from './gcp-support.js';

const DAY = 86_400;

describe('Cloud KMS server: crypto keys', () => {
  let h: Harness;
  let ring: string;
  beforeAll(async () => {
    h = await startHarness();
    ring = await newKeyRing(h.client);
  });
  afterAll(async () => {
    await h.close();
  });

  it('creates an ENCRYPT_DECRYPT key with defaults and a primary version', async () => {
    const [key] = await h.client.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'sym',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT', labels: { team: 'core' } },
    });
    expect(key.name).toBe(`${ring}/cryptoKeys/sym`);
    expect(key.purpose).toBe('ENCRYPT_DECRYPT');
    expect(key.versionTemplate?.algorithm).toBe('GOOGLE_SYMMETRIC_ENCRYPTION');
    expect(key.versionTemplate?.protectionLevel).toBe('SOFTWARE');
    expect(key.primary?.name).toBe(`${ring}/cryptoKeys/sym/cryptoKeyVersions/1`);
    expect(key.primary?.state).toBe('ENABLED');
    expect(key.labels).toEqual({ team: 'core' });
    expect(Number(key.destroyScheduledDuration?.seconds)).toBe(30 * DAY);
    const [got] = await h.client.getCryptoKey({ name: key.name! });
    expect(got.primary?.name).toBe(key.primary?.name);
  });

  it('creates keys of every purpose; asymmetric and MAC keys have no primary', async () => {
    const cases = [
      ['sign-ec', 'ASYMMETRIC_SIGN', 'EC_SIGN_P256_SHA256'],
      ['dec-rsa', 'ASYMMETRIC_DECRYPT', 'RSA_DECRYPT_OAEP_2048_SHA256'],
      ['mac', 'MAC', 'HMAC_SHA256'],
    ] as const;
    for (const [id, purpose, algorithm] of cases) {
      const [key] = await h.client.createCryptoKey({
        parent: ring,
        cryptoKeyId: id,
        cryptoKey: { purpose, versionTemplate: { algorithm } },
      });
      expect(key.purpose).toBe(purpose);
      expect(key.primary).toBeFalsy();
      const [versions] = await h.client.listCryptoKeyVersions({ parent: key.name! });
      expect(versions.map((v) => [v.state, v.algorithm])).toEqual([['ENABLED', algorithm]]);
    }
  });

  it('keeps the requested protection level and the destroy duration', async () => {
    const [key] = await h.client.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'hsm',
      cryptoKey: {
        purpose: 'ENCRYPT_DECRYPT',
        versionTemplate: { algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION', protectionLevel: 'HSM' },
        destroyScheduledDuration: { seconds: 2 * DAY },
      },
    });
    expect(key.primary?.protectionLevel).toBe('HSM');
    expect(Number(key.destroyScheduledDuration?.seconds)).toBe(2 * DAY);
  });

  it('refuses bad definitions with INVALID_ARGUMENT', async () => {
    const bad = [
      { purpose: 'ASYMMETRIC_SIGN' }, // no algorithm
      { purpose: 'ENCRYPT_DECRYPT', versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256' } }, // wrong purpose
      { purpose: 'MAC', versionTemplate: { algorithm: 'HMAC_SHA256' }, rotationPeriod: { seconds: 2 * DAY } },
      { purpose: 'ENCRYPT_DECRYPT', rotationPeriod: { seconds: 2 * DAY } }, // no next_rotation_time
      { purpose: 'ENCRYPT_DECRYPT', rotationPeriod: { seconds: 3600 }, nextRotationTime: { seconds: 4e9 } },
      { purpose: 'ENCRYPT_DECRYPT', destroyScheduledDuration: { seconds: 3600 } },
      { purpose: 'ENCRYPT_DECRYPT', labels: { Upper: 'x' } },
      {},
    ] as const;
    for (const [i, cryptoKey] of bad.entries()) {
      await expectCode(
        h.client.createCryptoKey({ parent: ring, cryptoKeyId: `bad-${i}`, cryptoKey }),
        grpc.status.INVALID_ARGUMENT,
      );
    }
  });

  it('answers ALREADY_EXISTS and NOT_FOUND', async () => {
    await h.client.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'twice',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT' },
    });
    await expectCode(
      h.client.createCryptoKey({
        parent: ring,
        cryptoKeyId: 'twice',
        cryptoKey: { purpose: 'ENCRYPT_DECRYPT' },
      }),
      grpc.status.ALREADY_EXISTS,
    );
    await expectCode(h.client.getCryptoKey({ name: `${ring}/cryptoKeys/absent` }), grpc.status.NOT_FOUND);
    await expectCode(
      h.client.createCryptoKey({
        parent: `${ring}-missing`,
        cryptoKeyId: 'k',
        cryptoKey: { purpose: 'ENCRYPT_DECRYPT' },
      }),
      grpc.status.NOT_FOUND,
    );
  });

  it('skips the initial version when asked', async () => {
    const [key] = await h.client.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'empty',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT' },
      skipInitialVersionCreation: true,
    });
    expect(key.primary).toBeFalsy();
    const [versions] = await h.client.listCryptoKeyVersions({ parent: key.name! });
    expect(versions).toHaveLength(0);
  });

  it('sets rotation and rotates automatically when the clock passes next_rotation_time', async () => {
    const now = h.server.clock.now().getTime() / 1000;
    const [key] = await h.client.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'rotating',
      cryptoKey: {
        purpose: 'ENCRYPT_DECRYPT',
        rotationPeriod: { seconds: DAY },
        nextRotationTime: { seconds: Math.floor(now + DAY) },
      },
    });
    expect(Number(key.rotationPeriod?.seconds)).toBe(DAY);
    h.server.clock.advance((2 * DAY + 60) * 1000);
    const [rotated] = await h.client.getCryptoKey({ name: key.name! });
    expect(rotated.primary?.name).toBe(`${key.name}/cryptoKeyVersions/3`);
    expect(Number(rotated.nextRotationTime?.seconds)).toBe(Math.floor(now + 3 * DAY));
  });

  it('updates labels, rotation and the algorithm through a field mask', async () => {
    const [key] = await h.client.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'updatable',
      cryptoKey: {
        purpose: 'ASYMMETRIC_SIGN',
        versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256' },
        labels: { a: '1' },
      },
    });
    const [updated] = await h.client.updateCryptoKey({
      cryptoKey: {
        name: key.name!,
        labels: { b: '2' },
        versionTemplate: { algorithm: 'EC_SIGN_P384_SHA384' },
      },
      updateMask: { paths: ['labels', 'version_template.algorithm'] },
    });
    expect(updated.labels).toEqual({ b: '2' });
    expect(updated.versionTemplate?.algorithm).toBe('EC_SIGN_P384_SHA384');
    const [sym] = await h.client.getCryptoKey({ name: `${ring}/cryptoKeys/sym` });
    const next = Math.floor(h.server.clock.now().getTime() / 1000 + 10 * DAY);
    const [rot] = await h.client.updateCryptoKey({
      cryptoKey: {
        name: sym.name!,
        rotationPeriod: { seconds: 7 * DAY },
        nextRotationTime: { seconds: next },
      },
      updateMask: { paths: ['rotation_period', 'next_rotation_time'] },
    });
    expect(Number(rot.rotationPeriod?.seconds)).toBe(7 * DAY);
    expect(Number(rot.nextRotationTime?.seconds)).toBe(next);
  });

  it('refuses updates without a mask, to immutable fields, or with bad values', async () => {
    const name = `${ring}/cryptoKeys/updatable`;
    const attempts = [
      { cryptoKey: { name, labels: { x: 'y' } } },
      { cryptoKey: { name, purpose: 'MAC' as const }, updateMask: { paths: ['purpose'] } },
      {
        cryptoKey: { name, versionTemplate: { algorithm: 'HMAC_SHA256' as const } },
        updateMask: { paths: ['version_template.algorithm'] },
      },
      { cryptoKey: { name, rotationPeriod: { seconds: DAY } }, updateMask: { paths: ['rotation_period'] } },
      { cryptoKey: { name }, updateMask: { paths: ['no_such_field'] } },
    ];
    for (const req of attempts) await expectCode(h.client.updateCryptoKey(req), grpc.status.INVALID_ARGUMENT);
    const [after] = await h.client.getCryptoKey({ name });
    expect(after.labels).toEqual({ b: '2' });
    await expectCode(
      h.client.updateCryptoKey({
        cryptoKey: { name: `${ring}/cryptoKeys/nope`, labels: {} },
        updateMask: { paths: ['labels'] },
      }),
      grpc.status.NOT_FOUND,
    );
  });

  it('over gRPC takes update_mask paths as proto field names only, not the JSON forms', async () => {
    // google/protobuf/field_mask.proto: lowerCamel names joined by commas are the JSON encoding of
    // a FieldMask; a binary FieldMask holds one field name per path, so "rotationPeriod" or
    // "labels,rotation_period" names no field of CryptoKey (REST converts: gcp-rest.test.ts).
    const name = `${ring}/cryptoKeys/mask-names`;
    await h.client.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'mask-names',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT', labels: { a: '1' } },
    });
    const now = Math.floor(h.server.clock.now().getTime() / 1000);
    const rotation = { rotationPeriod: { seconds: 2 * DAY }, nextRotationTime: { seconds: now + DAY } };
    for (const paths of [
      ['rotationPeriod', 'nextRotationTime'],
      ['labels,rotation_period,next_rotation_time'],
    ]) {
      await expectCode(
        h.client.updateCryptoKey({
          cryptoKey: { name, labels: { a: '2' }, ...rotation },
          updateMask: { paths },
        }),
        grpc.status.INVALID_ARGUMENT,
      );
    }
    await expectCode(
      h.client.updateCryptoKeyVersion({
        cryptoKeyVersion: { name: `${name}/cryptoKeyVersions/1`, state: 'DISABLED' },
        updateMask: { paths: ['State'] },
      }),
      grpc.status.INVALID_ARGUMENT,
    );
    const [after] = await h.client.getCryptoKey({ name });
    expect(after.labels).toEqual({ a: '1' });
    expect(after.rotationPeriod ?? null).toBeNull();
    expect(after.primary?.state).toBe('ENABLED');
    // The same update with the proto names goes through.
    const [updated] = await h.client.updateCryptoKey({
      cryptoKey: { name, labels: { a: '2' }, ...rotation },
      updateMask: { paths: ['labels', 'rotation_period', 'next_rotation_time'] },
    });
    expect(updated.labels).toEqual({ a: '2' });
    expect(Number(updated.rotationPeriod?.seconds)).toBe(2 * DAY);
  });

  it('lists crypto keys in pages', async () => {
    const [page, , raw] = await h.client.listCryptoKeys(
      { parent: ring, pageSize: 3 },
      { autoPaginate: false },
    );
    expect(page).toHaveLength(3);
    expect(raw?.nextPageToken).toBeTruthy();
    const names: string[] = [];
    for await (const k of h.client.listCryptoKeysAsync({ parent: ring, pageSize: 3 })) names.push(k.name!);
    expect(names.length).toBe(raw?.totalSize);
    expect(names).toContain(`${ring}/cryptoKeys/sym`);
  });
});

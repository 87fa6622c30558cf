import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectCode, grpc, type Harness, newKeyRing, startHarness } from './gcp-support.js';

const DAY = 86_400_000;

describe('Cloud KMS server: crypto key versions', () => {
  let h: Harness;
  let key: string;
  beforeAll(async () => {
    h = await startHarness();
    const ring = await newKeyRing(h.client);
    const [k] = await h.client.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'versions',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT', destroyScheduledDuration: { seconds: 86_400 } },
    });
    key = k.name!;
  });
  afterAll(async () => {
    await h.close();
  });

  const v = (n: number) => `${key}/cryptoKeyVersions/${n}`;

  it('creates versions with sequential ids, gets and lists them', async () => {
    const [v2] = await h.client.createCryptoKeyVersion({ parent: key, cryptoKeyVersion: {} });
    expect(v2.name).toBe(v(2));
    expect(v2.state).toBe('ENABLED');
    const [got] = await h.client.getCryptoKeyVersion({ name: v(2) });
    expect(got.algorithm).toBe('GOOGLE_SYMMETRIC_ENCRYPTION');
    const [list, , raw] = await h.client.listCryptoKeyVersions(
      { parent: key, pageSize: 1 },
      { autoPaginate: false },
    );
    expect(list.map((x) => x.name)).toEqual([v(1)]);
    expect(raw?.totalSize).toBe(2);
    await expectCode(h.client.getCryptoKeyVersion({ name: v(99) }), grpc.status.NOT_FOUND);
    await expectCode(
      h.client.getCryptoKeyVersion({ name: `${key}/cryptoKeyVersions/x` }),
      grpc.status.NOT_FOUND,
    );
  });

  it('disables and enables a version through UpdateCryptoKeyVersion', async () => {
    const [off] = await h.client.updateCryptoKeyVersion({
      cryptoKeyVersion: { name: v(2), state: 'DISABLED' },
      updateMask: { paths: ['state'] },
    });
    expect(off.state).toBe('DISABLED');
    const [on] = await h.client.updateCryptoKeyVersion({
      cryptoKeyVersion: { name: v(2), state: 'ENABLED' },
      updateMask: { paths: ['state'] },
    });
    expect(on.state).toBe('ENABLED');
    await expectCode(
      h.client.updateCryptoKeyVersion({
        cryptoKeyVersion: { name: v(2), state: 'DESTROYED' },
        updateMask: { paths: ['state'] },
      }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(
      h.client.updateCryptoKeyVersion({ cryptoKeyVersion: { name: v(2), state: 'DISABLED' } }),
      grpc.status.INVALID_ARGUMENT,
    );
  });

  it('moves the primary with UpdateCryptoKeyPrimaryVersion, only to an enabled version', async () => {
    const [k] = await h.client.updateCryptoKeyPrimaryVersion({ name: key, cryptoKeyVersionId: '2' });
    expect(k.primary?.name).toBe(v(2));
    await h.client.createCryptoKeyVersion({ parent: key, cryptoKeyVersion: { state: 'DISABLED' } });
    await expectCode(
      h.client.updateCryptoKeyPrimaryVersion({ name: key, cryptoKeyVersionId: '3' }),
      grpc.status.FAILED_PRECONDITION,
    );
    await expectCode(
      h.client.updateCryptoKeyPrimaryVersion({ name: key, cryptoKeyVersionId: '42' }),
      grpc.status.NOT_FOUND,
    );
  });

  it('schedules destruction for destroy_scheduled_duration, restores to DISABLED', async () => {
    const before = h.server.clock.now().getTime();
    const [scheduled] = await h.client.destroyCryptoKeyVersion({ name: v(1) });
    expect(scheduled.state).toBe('DESTROY_SCHEDULED');
    const destroyAt = Number(scheduled.destroyTime?.seconds) * 1000;
    expect(destroyAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + DAY);
    expect(destroyAt).toBeLessThanOrEqual(before + DAY + 60_000);
    await expectCode(h.client.destroyCryptoKeyVersion({ name: v(1) }), grpc.status.FAILED_PRECONDITION);
    const [restored] = await h.client.restoreCryptoKeyVersion({ name: v(1) });
    expect(restored.state).toBe('DISABLED');
    expect(restored.destroyTime).toBeFalsy();
    await expectCode(h.client.restoreCryptoKeyVersion({ name: v(1) }), grpc.status.FAILED_PRECONDITION);
  });

  it('reaches DESTROYED when the clock passes destroy_time, and stays there', async () => {
    await h.client.destroyCryptoKeyVersion({ name: v(3) });
    h.server.clock.advance(DAY - 60_000);
    const [still] = await h.client.getCryptoKeyVersion({ name: v(3) });
    expect(still.state).toBe('DESTROY_SCHEDULED');
    h.server.clock.advance(120_000);
    const [gone] = await h.client.getCryptoKeyVersion({ name: v(3) });
    expect(gone.state).toBe('DESTROYED');
    expect(gone.destroyEventTime).toBeTruthy();
    await expectCode(h.client.restoreCryptoKeyVersion({ name: v(3) }), grpc.status.FAILED_PRECONDITION);
    await expectCode(
      h.client.updateCryptoKeyVersion({
        cryptoKeyVersion: { name: v(3), state: 'ENABLED' },
        updateMask: { paths: ['state'] },
      }),
      grpc.status.FAILED_PRECONDITION,
    );
  });

  it('refuses UpdateCryptoKeyPrimaryVersion on a key without a primary (wrong purpose)', async () => {
    const ring = key.replace(/\/cryptoKeys\/.*$/, '');
    const [mac] = await h.client.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'mac-primary',
      cryptoKey: { purpose: 'MAC', versionTemplate: { algorithm: 'HMAC_SHA256' } },
    });
    await expectCode(
      h.client.updateCryptoKeyPrimaryVersion({ name: mac.name!, cryptoKeyVersionId: '1' }),
      grpc.status.FAILED_PRECONDITION,
    );
  });
});

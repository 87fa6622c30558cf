import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32c } from '../src/gcp/crc32c.js';
import { type Harness, newKeyRing, startHarness } from './gcp-support.js';

// Where the server once differed from the Cloud KMS API reference (service.proto, resources.proto).
const DAY = 86_400;

describe('Cloud KMS server: fidelity to the API reference', () => {
  let h: Harness;
  let ring: string;
  beforeAll(async () => {
    h = await startHarness();
    ring = await newKeyRing(h.client);
  });
  afterAll(async () => {
    await h.close();
  });

  // CryptoKey.next_rotation_time: "At next_rotation_time, the Key Management Service will
  // automatically: 1. Create a new version of this CryptoKey. 2. Mark the new version as
  // primary." A key with next_rotation_time and no rotation_period rotates once.
  it('next_rotation_time without rotation_period rotates the key once', async () => {
    const now = h.server.clock.now().getTime() / 1000;
    const [key] = await h.client.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'rotate-once',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT', nextRotationTime: { seconds: Math.floor(now + DAY) } },
    });
    expect(key.rotationPeriod).toBeFalsy();
    expect(key.primary?.name).toBe(`${key.name}/cryptoKeyVersions/1`);
    h.server.clock.advance((3 * DAY + 60) * 1000);
    const [rotated] = await h.client.getCryptoKey({ name: key.name! });
    expect(rotated.primary?.name).toBe(`${key.name}/cryptoKeyVersions/2`);
    expect(rotated.nextRotationTime).toBeFalsy();
    h.server.clock.advance(30 * DAY * 1000);
    const [versions] = await h.client.listCryptoKeyVersions({ parent: key.name! });
    expect(versions.map((v) => v.name)).toEqual([1, 2].map((i) => `${key.name}/cryptoKeyVersions/${i}`));
  });

  // MacVerifyResponse.verified_success_integrity: "If the value of this field contradicts the
  // value of [MacVerifyResponse.success], discard the response" (service.proto): it mirrors
  // `success`, and Tink's GCP KMS MAC and gcloud's end-to-end integrity check compare the two.
  it('MacVerify: verified_success_integrity mirrors success, false included', async () => {
    const [key] = await h.client.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'mac-integrity',
      cryptoKey: { purpose: 'MAC', versionTemplate: { algorithm: 'HMAC_SHA256' } },
    });
    const name = `${key.name}/cryptoKeyVersions/1`;
    const data = Buffer.from('mac me');
    const [signed] = await h.client.macSign({ name, data });
    const mac = Buffer.from(signed.mac as Uint8Array);
    const [ok] = await h.client.macVerify({ name, data, mac, macCrc32c: { value: crc32c(mac) } });
    expect([ok.success, ok.verifiedSuccessIntegrity]).toEqual([true, true]);
    const wrong = Buffer.alloc(32, 7);
    const [bad] = await h.client.macVerify({ name, data, mac: wrong, macCrc32c: { value: crc32c(wrong) } });
    expect(bad.success).toBe(false);
    expect(bad.verifiedSuccessIntegrity).toBe(false);
    expect(bad.verifiedMacCrc32c).toBe(true);
  });
});

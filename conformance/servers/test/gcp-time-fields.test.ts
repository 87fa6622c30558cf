import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  expectCode,
  grpc,
  type Harness,
  LOCATION,
  newKeyRing,
  startHarness,
  uniqueId,
} from './gcp-support.js';

// google.protobuf.Timestamp and Duration values outside the ranges their .proto files define
// (0001-01-01..9999-12-31; ±315,576,000,000 s with nanos of the seconds' sign) are not values of
// those types: the service answers INVALID_ARGUMENT. The server used to keep them: a
// next_rotation_time past year 275760 became an Invalid Date that broke every later --state
// write (INTERNAL for every changing call), and one past 9999 was served back as
// "+010000-01-01T00:00:00.000Z", which the REST client cannot parse.
const DAY = 86_400;
const LAST_VALID_SECOND = 253_402_300_799; // 9999-12-31T23:59:59Z

describe('Cloud KMS server: Timestamp and Duration fields outside their ranges', () => {
  let h: Harness;
  let ring: string;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyport-kms-time-'));
    h = await startHarness({ stateFile: join(dir, 'state.json') });
    ring = await newKeyRing(h.client);
  });
  afterAll(async () => {
    await h.close();
    await rm(dir, { recursive: true, force: true });
  });

  const create = (cryptoKey: object) =>
    h.client.createCryptoKey({
      parent: ring,
      cryptoKeyId: uniqueId('k'),
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT', ...cryptoKey },
    });

  it('a next_rotation_time after 9999-12-31T23:59:59Z is INVALID_ARGUMENT, and the server stays writable', async () => {
    for (const seconds of [LAST_VALID_SECOND + 1, 300_000_000_000, 1e15]) {
      await expectCode(
        create({ rotationPeriod: { seconds: 2 * DAY }, nextRotationTime: { seconds } }),
        grpc.status.INVALID_ARGUMENT,
      );
    }
    await expectCode(
      create({
        rotationPeriod: { seconds: 2 * DAY },
        nextRotationTime: { seconds: 2_000_000_000, nanos: 1e9 },
      }),
      grpc.status.INVALID_ARGUMENT,
    );
    // Nothing was kept: the ring lists no key and later writes (saved to the state file) work.
    const [keys] = await h.client.listCryptoKeys({ parent: ring });
    expect(keys).toEqual([]);
    const [other] = await h.client.createKeyRing({
      parent: LOCATION,
      keyRingId: uniqueId('after'),
      keyRing: {},
    });
    expect(other.name).toContain('/keyRings/after-');
    // The last valid second is a valid value.
    const [key] = await create({
      rotationPeriod: { seconds: 2 * DAY },
      nextRotationTime: { seconds: LAST_VALID_SECOND },
    });
    expect(Number(key.nextRotationTime?.seconds)).toBe(LAST_VALID_SECOND);
  });

  it('UpdateCryptoKey refuses an out-of-range next_rotation_time and changes nothing', async () => {
    const [key] = await create({});
    await expectCode(
      h.client.updateCryptoKey({
        cryptoKey: {
          name: key.name!,
          rotationPeriod: { seconds: 2 * DAY },
          nextRotationTime: { seconds: 1e15 },
        },
        updateMask: { paths: ['rotation_period', 'next_rotation_time'] },
      }),
      grpc.status.INVALID_ARGUMENT,
    );
    const [got] = await h.client.getCryptoKey({ name: key.name! });
    expect(got.nextRotationTime ?? null).toBeNull();
    expect(got.rotationPeriod ?? null).toBeNull();
  });

  it('a Duration with nanos of the other sign than its seconds, or beyond its range, is INVALID_ARGUMENT', async () => {
    await expectCode(
      create({
        rotationPeriod: { seconds: 2 * DAY, nanos: -5 },
        nextRotationTime: { seconds: 2_000_000_000 },
      }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(
      create({ destroyScheduledDuration: { seconds: 2 * DAY, nanos: -1 } }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(
      create({ destroyScheduledDuration: { seconds: 2 * DAY, nanos: 1e9 } }),
      grpc.status.INVALID_ARGUMENT,
    );
  });
});

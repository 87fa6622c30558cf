/**
 * An object that would take more parts than one upload allows (S3 10,000 parts, Azure 50,000
 * blocks) is uploaded in larger parts, chosen from the size read before anything is sent; one no
 * part size fits is failed at once, nothing uploaded and the object left as it was. Before, an
 * S3 object past 78 GiB (8 MiB parts) failed only after uploading 78 GiB, at the 10,001st part.
 *
 * Such objects are not made on an emulator: a store in front of the real one reports the size it
 * read larger than the body it streams (as the size on the service would be), and counts the
 * requests of each upload.
 */
import { openEnvelope, sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseObjectLocation } from '../src/location.js';
import { migrateObject } from '../src/migrate-object.js';
import type { ObjectStore, PutOptions } from '../src/store.js';
import { type TestKeys, testKeys } from './helpers/keys.js';
import { type EmulatorName, endpointsFor, freshBucket, readAll } from './helpers/stores.js';

let k: TestKeys;
beforeAll(async () => {
  k = await testKeys();
});
afterAll(async () => {
  await k?.close();
});

/** `inner` with every read's size reported as `size`, and each upload's requests counted. */
function reportingSize(inner: ObjectStore, size: number) {
  const uploads: number[] = [];
  const store: ObjectStore = {
    provider: inner.provider,
    location: inner.location,
    list: (prefix, signal, beforePage) => inner.list(prefix, signal, beforePage),
    get: async (key, signal, beforeRequest) => ({ ...(await inner.get(key, signal, beforeRequest)), size }),
    put: (key, body, options?: PutOptions) => {
      const at = uploads.push(0) - 1;
      return inner.put(key, body, {
        ...options,
        beforeRequest: async () => {
          uploads[at] = (uploads[at] as number) + 1;
        },
      });
    },
    delete: (key, signal, beforeRequest) => inner.delete(key, signal, beforeRequest),
  };
  return { store, uploads };
}

/** The services' own limits: most parts of one upload, largest part. */
const MAX_PARTS = { s3: 10_000, azblob: 50_000 } as const;
const LIMITS: readonly [EmulatorName, keyof typeof MAX_PARTS, number][] = [
  ['moto', 's3', 5 * 1024 * 1024 * 1024],
  ['azurite', 'azblob', 4000 * 1024 * 1024],
];

describe.each(LIMITS)('part count on %s', (name, provider, largestPart) => {
  it('an object no part size fits one upload for fails InvalidArgument before any upload request', async () => {
    const { store: real } = parseObjectLocation(`${await freshBucket(name)}/`, endpointsFor(name));
    const sealed = await sealEnvelope(Buffer.from('kept'), { recipients: [k.from], keys: k.keys });
    await real.put('huge', sealed);
    const { store, uploads } = reportingSize(real, MAX_PARTS[provider] * largestPart + 1);
    await expect(
      migrateObject(store, 'huge', { from: k.from, to: k.to, keys: k.keys }),
    ).rejects.toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringContaining('does not fit one upload'),
    });
    // Nothing was sent; the object is as it was, under the source key.
    expect(uploads).toEqual([0]);
    const after = await real.get('huge');
    expect(Buffer.compare(await readAll(after.body), sealed)).toBe(0);
  }, 30_000);
});

describe('part count on azurite, small blocks', () => {
  it('an object past 50,000 blocks of the block size set is uploaded in larger blocks that fit', async () => {
    const block = 16;
    const { store: real } = parseObjectLocation(`${await freshBucket('azurite')}/`, {
      ...endpointsFor('azurite'),
      partSize: block,
    });
    const plaintext = Buffer.alloc(1500, 9);
    await real.put('big', await sealEnvelope(plaintext, { recipients: [k.from], keys: k.keys }));
    // As if 60,000 blocks of 16 B were read: the upload may take at most 50,000 blocks.
    const reported = 60_000 * block;
    const { store, uploads } = reportingSize(real, reported);
    expect(await migrateObject(store, 'big', { from: k.from, to: k.to, keys: k.keys })).toMatchObject({
      outcome: 'migrated',
    });
    const written = await real.get('big');
    const body = await readAll(written.body);
    expect(
      Buffer.compare((await openEnvelope(body, { trust: [k.to], keys: k.keys })).plaintext, plaintext),
    ).toBe(0);
    // Blocks of the size that fits the reported size (and the header's growth) in 50,000, plus
    // the commit: not 16-byte blocks, which would have taken more than 50,000 for that size.
    const fitted = Math.ceil((reported + 1024 * 1024) / MAX_PARTS.azblob);
    expect(fitted).toBeGreaterThan(block);
    expect(uploads).toEqual([Math.ceil(body.length / fitted) + 1]);
  }, 60_000);
});

/**
 * An object's storage class (S3 storage class, Cloud Storage storage class, Azure access tier set
 * on the blob) is kept by its migration, single and multipart: the rewrite without it moved a
 * Glacier IR, Coldline or Cool object to the default class, a change of the bill nobody asked
 * for. An object in the default class (an Azure tier inferred from the account) stays so.
 */
import { HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { Storage } from '@google-cloud/storage';
import { sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseObjectLocation } from '../src/location.js';
import { migrateObject } from '../src/migrate-object.js';
import { type TestKeys, testKeys } from './helpers/keys.js';
import { EMULATORS, type EmulatorName, endpointsFor, freshBucket } from './helpers/stores.js';

let k: TestKeys;
beforeAll(async () => {
  k = await testKeys();
});
afterAll(async () => {
  await k?.close();
});

const PART = 5 * 1024 * 1024;
const COLD: Record<EmulatorName, string> = {
  moto: 'GLACIER_IR',
  azurite: 'Cool',
  'fake-gcs-server': 'COLDLINE',
};

/** Writes and reads an object's class straight through each SDK, not through the store. */
function classes(name: EmulatorName, location: string) {
  const e = endpointsFor(name);
  if (name === 'moto') {
    const bucket = location.slice('s3://'.length);
    const s3 = new S3Client({ endpoint: e.s3Endpoint as string, region: 'us-east-1', forcePathStyle: true });
    return {
      put: (key: string, body: Uint8Array, cls?: string) =>
        s3.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body: body,
            ...(cls !== undefined ? { StorageClass: cls as 'GLACIER_IR' } : {}),
          }),
        ),
      get: async (key: string) =>
        (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).StorageClass ?? 'STANDARD',
    };
  }
  if (name === 'azurite') {
    const container = location.split('/')[3] as string;
    const c = BlobServiceClient.fromConnectionString(e.azureConnectionString as string).getContainerClient(
      container,
    );
    return {
      put: (key: string, body: Uint8Array, cls?: string) =>
        c.getBlockBlobClient(key).upload(body, body.length, cls !== undefined ? { tier: cls } : {}),
      get: async (key: string) => {
        const p = await c.getBlobClient(key).getProperties();
        return p.accessTierInferred === true ? `inferred ${p.accessTier}` : String(p.accessTier);
      },
    };
  }
  const bucket = new Storage({ apiEndpoint: e.gcsEndpoint as string, projectId: 'keyport-test' }).bucket(
    location.slice('gs://'.length),
  );
  return {
    put: (key: string, body: Uint8Array, cls?: string) =>
      bucket.file(key).save(Buffer.from(body), {
        resumable: false,
        ...(cls !== undefined ? { metadata: { storageClass: cls } } : {}),
      }),
    get: async (key: string) => String((await bucket.file(key).getMetadata())[0].storageClass),
  };
}

describe.each(EMULATORS)('storage class on %s', (name) => {
  it('is kept by a migration, single and multipart; the default class stays the default', async () => {
    const location = await freshBucket(name);
    const { store } = parseObjectLocation(`${location}/`, { ...endpointsFor(name), partSize: PART });
    const sdk = classes(name, location);
    const seal = (n: number) => sealEnvelope(Buffer.alloc(n, 3), { recipients: [k.from], keys: k.keys });
    await sdk.put('cold/small', await seal(100), COLD[name]);
    await sdk.put('cold/big', await seal(PART + 1024), COLD[name]);
    await sdk.put('plain', await seal(100));
    const plainBefore = await sdk.get('plain');
    expect(await sdk.get('cold/small')).toBe(COLD[name]);
    for (const key of ['cold/small', 'cold/big', 'plain'])
      expect(await migrateObject(store, key, { from: k.from, to: k.to, keys: k.keys })).toMatchObject({
        outcome: 'migrated',
      });
    expect(await sdk.get('cold/small')).toBe(COLD[name]);
    expect(await sdk.get('cold/big')).toBe(COLD[name]);
    expect(await sdk.get('plain')).toBe(plainBefore);
  }, 60_000);
});

/**
 * Uploads cut short and uploads at the part boundary, on S3 and Azure Blob: what requests go out,
 * what is left behind, and that an aborted upload returns even when the service stops answering.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { openEnvelope, sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseObjectLocation } from '../src/location.js';
import { migrateObject } from '../src/migrate-object.js';
import { s3Store } from '../src/s3.js';
import type { ObjectStore } from '../src/store.js';
import { testKeys } from './helpers/keys.js';
import { endpointsFor, freshBucket, readAll } from './helpers/stores.js';

const MiB = 1024 * 1024;
const PART = 5 * MiB;

/** A body streamed in chunks, as a migration gives it (never a single Uint8Array). */
async function* streamed(bytes: Buffer): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += 1_000_003) yield bytes.subarray(at, at + 1_000_003);
}

/** Puts `bytes` streamed and returns how many requests the store said it sent. */
async function requestsFor(store: ObjectStore, key: string, bytes: Buffer): Promise<number> {
  let n = 0;
  await store.put(key, streamed(bytes), {
    beforeRequest: async () => {
      n++;
    },
  });
  expect((await readAll((await store.get(key)).body)).equals(bytes), key).toBe(true);
  return n;
}

describe('S3 (moto): part boundaries and failed multipart uploads', () => {
  let store: ObjectStore;
  let s3: S3Client;
  let bucket: string;
  beforeAll(async () => {
    const uri = await freshBucket('moto');
    bucket = uri.slice('s3://'.length);
    const e = endpointsFor('moto');
    store = parseObjectLocation(uri, { ...e, partSize: PART }).store;
    s3 = new S3Client({ endpoint: e.s3Endpoint as string, region: 'us-east-1', forcePathStyle: true });
  });
  afterAll(() => s3.destroy());

  it('a body of exactly the part size is one PutObject; of exactly two parts, no empty third part', async () => {
    // Before: create, the full part, an empty part, complete (4) for one part's worth.
    expect(await requestsFor(store, 'exact-1', randomBytes(PART))).toBe(1);
    // Create, two parts, complete: before, an empty third part was uploaded too (5).
    expect(await requestsFor(store, 'exact-2', randomBytes(2 * PART))).toBe(4);
    expect(await requestsFor(store, 'one-over', randomBytes(PART + 1))).toBe(4);
    expect(await requestsFor(store, 'empty', Buffer.alloc(0))).toBe(1);
  });

  it('a multipart upload that fails or is aborted half-way leaves no incomplete upload behind', async () => {
    await expect(
      store.put(
        'fails',
        (async function* () {
          yield randomBytes(6 * MiB);
          yield randomBytes(6 * MiB);
          throw new Error('the source broke');
        })(),
      ),
    ).rejects.toThrow();
    const ac = new AbortController();
    await expect(
      store.put(
        'aborted',
        (async function* () {
          yield randomBytes(6 * MiB);
          yield randomBytes(6 * MiB);
          ac.abort();
          yield randomBytes(MiB);
        })(),
        { signal: ac.signal },
      ),
    ).rejects.toMatchObject({ code: 'Aborted' });
    const left = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    expect(left.Uploads ?? []).toEqual([]);
  }, 30_000);
});

describe('S3: an aborted multipart upload when the service stops answering', () => {
  let server: Server;
  let port = 0;
  const seen: string[] = [];
  beforeAll(async () => {
    // Starts the multipart upload, then never answers again (a part, the abort): a hung service.
    server = createServer((req, res) => {
      seen.push(`${req.method} ${new URL(req.url ?? '/', 'http://x').searchParams.get('x-id') ?? req.url}`);
      req.resume();
      if (req.method === 'POST' && req.url?.includes('uploads') === true) {
        res.writeHead(200, { 'content-type': 'application/xml' });
        res.end(
          '<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>hung-bucket</Bucket><Key>k</Key><UploadId>u1</UploadId></InitiateMultipartUploadResult>',
        );
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('returns Aborted within seconds (the AbortMultipartUpload has a deadline of its own)', async () => {
    const store = s3Store({
      bucket: 'hung-bucket',
      endpoint: `http://127.0.0.1:${port}`,
      region: 'us-east-1',
      partSize: PART,
    });
    const started = Date.now();
    const outcome = await Promise.race([
      store.put('k', streamed(randomBytes(12 * MiB)), { signal: AbortSignal.timeout(500) }).then(
        () => 'written',
        (e: { code?: string }) => e.code,
      ),
      new Promise((resolve) => setTimeout(() => resolve('still waiting after 20 s'), 20_000)),
    ]);
    expect(outcome).toBe('Aborted');
    expect(Date.now() - started).toBeLessThan(10_000);
    // The abort was sent (and went unanswered): the parts are left to the lifecycle rule.
    expect(seen).toContain('DELETE AbortMultipartUpload');
  }, 30_000);
});

describe('Azure Blob (Azurite): one Put Blob below the block size', () => {
  let store: ObjectStore;
  let container: ReturnType<BlobServiceClient['getContainerClient']>;
  beforeAll(async () => {
    const uri = await freshBucket('azurite');
    const e = endpointsFor('azurite');
    store = parseObjectLocation(uri, { ...e, partSize: PART }).store;
    container = BlobServiceClient.fromConnectionString(e.azureConnectionString as string).getContainerClient(
      uri.split('/')[3] as string,
    );
  });

  it('a streamed body up to the block size is one request, and leaves no uncommitted block', async () => {
    // Before: Put Block and Put Block List for every object a migration wrote, however small.
    expect(await requestsFor(store, 'small', Buffer.from('a few bytes'))).toBe(1);
    expect(await requestsFor(store, 'exact', randomBytes(PART))).toBe(1);
    expect(await requestsFor(store, 'empty', Buffer.alloc(0))).toBe(1);
    // Two blocks and the commit.
    expect(await requestsFor(store, 'two', randomBytes(PART + 1))).toBe(3);
    const list = await container.getBlockBlobClient('small').getBlockList('all');
    expect(list.uncommittedBlocks ?? []).toEqual([]);
  }, 30_000);

  it('migrates a blob that holds uncommitted blocks of another id length (an interrupted upload of another client)', async () => {
    const k = await testKeys();
    try {
      const plaintext = Buffer.from('the secret of an object whose last upload was interrupted');
      await store.put('left', await sealEnvelope(plaintext, { recipients: [k.from], keys: k.keys }));
      // Another client's upload staged a block and died before its commit. Azure refuses a Put
      // Block whose id is of another length than the blob's uncommitted ones (400
      // InvalidBlobOrBlock): staging this object's rewrap failed it on every run.
      await container
        .getBlockBlobClient('left')
        .stageBlock(Buffer.from('other').toString('base64'), Buffer.from('x'), 1);
      const out = await migrateObject(store, 'left', { from: k.from, to: k.to, keys: k.keys });
      expect(out.outcome).toBe('migrated');
      const opened = await openEnvelope(await readAll((await store.get('left')).body), {
        trust: [k.to],
        keys: k.keys,
      });
      expect(Buffer.from(opened.plaintext).equals(plaintext)).toBe(true);
    } finally {
      await k.close();
    }
  }, 30_000);
});

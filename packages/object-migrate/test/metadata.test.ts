/**
 * User metadata named like `Object`'s own properties (`__proto__`, `constructor`) is carried
 * through a migration as it is: the S3 SDK collects response metadata into a plain object, where
 * `__proto__` vanished, so the rewrite dropped it. On moto; for Azure (whose SDK keeps such names)
 * on a stand-in server, since Azurite itself mangles them when it stores them.
 */
import { createServer, type Server } from 'node:http';
import { sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { azureBlobStore } from '../src/azure-blob.js';
import { parseObjectLocation } from '../src/location.js';
import { migrateObject } from '../src/migrate-object.js';
import { type TestKeys, testKeys } from './helpers/keys.js';
import { endpointsFor, freshBucket } from './helpers/stores.js';

let k: TestKeys;
beforeAll(async () => {
  k = await testKeys();
});
afterAll(async () => {
  await k?.close();
});

const NAMES = JSON.parse('{"__proto__":"p","constructor":"c","plain":"v"}') as Record<string, string>;
const sorted = (m: Readonly<Record<string, string>>) =>
  Object.entries(m).sort(([a], [b]) => (a < b ? -1 : 1));

describe('metadata named like Object properties, on moto', () => {
  it('is read back whole and kept by the migration', async () => {
    const { store } = parseObjectLocation(`${await freshBucket('moto')}/`, endpointsFor('moto'));
    const sealed = await sealEnvelope(Buffer.from('x'), { recipients: [k.from], keys: k.keys });
    await store.put('m', sealed, { attributes: { metadata: NAMES, tags: {} } });
    const read = await store.get('m');
    read.cancel();
    expect(sorted(read.metadata)).toEqual(sorted(NAMES));
    expect(await migrateObject(store, 'm', { from: k.from, to: k.to, keys: k.keys })).toMatchObject({
      outcome: 'migrated',
    });
    const after = await store.get('m');
    after.cancel();
    expect(sorted(after.metadata)).toEqual(sorted(NAMES));
  }, 30_000);
});

describe('metadata named like Object properties, from an Azure stand-in', () => {
  let server: Server;
  let port = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (new URL(req.url ?? '/', 'http://x').searchParams.get('comp') === 'tags') {
        res.setHeader('content-type', 'application/xml');
        res.end('<?xml version="1.0" encoding="utf-8"?><Tags><TagSet></TagSet></Tags>');
        return;
      }
      res.writeHead(200, {
        'content-length': '1',
        etag: '"0x8D0"',
        'last-modified': 'Mon, 01 Jan 2024 00:00:00 GMT',
        'x-ms-blob-type': 'BlockBlob',
        'x-ms-meta-__proto__': 'p',
        'x-ms-meta-constructor': 'c',
        'x-ms-meta-plain': 'v',
      });
      res.end('x');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('is read back whole', async () => {
    const store = azureBlobStore({
      account: 'devstoreaccount1',
      container: 'c',
      connectionString: `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${Buffer.from('k'.repeat(64)).toString('base64')};BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`,
    });
    const read = await store.get('m');
    read.cancel();
    expect(sorted(read.metadata)).toEqual(sorted(NAMES));
  });
});

/**
 * An S3 listing names each object as it is stored. Its XML text cannot carry every key: a CR
 * reads back as LF (XML end-of-line handling), so `k/cr\rx` was listed as `k/cr\nx`, its read
 * found nothing, and it was counted `skipped` (deleted since listed) with the run ok, its object
 * left under the source key. Keys are listed URL-encoded and decoded (S3 writes a space as `+`);
 * a store that ignores the encoding answers them as they are.
 *
 * Azure has no such encoding: its blob names are read from the listing's XML as written, since
 * the SDK's parser keeps a character reference (`&#xD;`, how Azurite writes a CR) as text and
 * reads a raw CR as LF. `k/cr\rx` was listed as `k/cr&#xD;x` and counted deleted with the run ok,
 * and the next page, asked after that marker, left out every name between (`k/cr x`).
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { openEnvelope, sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { azureBlobStore } from '../src/azure-blob.js';
import { parseObjectLocation } from '../src/location.js';
import { s3Store } from '../src/s3.js';
import type { ObjectStore } from '../src/store.js';
import { runShard } from '../src/worker.js';
import { type TestKeys, testKeys } from './helpers/keys.js';
import { endpointsFor, freshBucket, readAll } from './helpers/stores.js';

let k: TestKeys;
beforeAll(async () => {
  k = await testKeys();
});
afterAll(async () => {
  await k?.close();
});

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function listAll(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const e of store.list(prefix)) keys.push(e.key);
  return keys;
}

describe('S3 keys XML would change, on moto', () => {
  it('are listed as stored and migrated, none skipped as deleted', async () => {
    const uri = `${await freshBucket('moto')}/k/`;
    const { store } = parseObjectLocation(uri, endpointsFor('moto'));
    // moto 5.2 answers 404 to a PUT of a key holding LF, so the CR alone here.
    const names = ['k/cr\rx', 'k/a b', 'k/a+b', 'k/100%.csv', 'k/%2F', 'k/tab\tx'];
    const want = new Map<string, string>();
    for (const name of names) {
      const pt = Buffer.from(`plaintext of ${name}`);
      await store.put(name, await sealEnvelope(pt, { recipients: [k.from], keys: k.keys }));
      want.set(name, sha(pt));
    }
    expect((await listAll(store, 'k/')).sort()).toEqual([...names].sort());
    const report = await runShard({
      location: uri,
      endpoints: endpointsFor('moto'),
      from: k.from,
      to: k.to,
      keys: k.keys,
    });
    expect(report.failures).toEqual([]);
    expect(report.counts).toMatchObject({ listed: names.length, migrated: names.length, skipped: 0 });
    for (const [name, digest] of want) {
      const opened = await openEnvelope(await readAll((await store.get(name)).body), {
        trust: [k.to],
        keys: k.keys,
      });
      expect(sha(opened.plaintext), JSON.stringify(name)).toBe(digest);
    }
  }, 60_000);
});

describe('an S3 stand-in answering encoded keys as real S3 does', () => {
  let server: Server;
  let port = 0;
  let body = '';
  beforeAll(async () => {
    server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/xml');
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const page = (keys: string[], encodingType: string | undefined) =>
    `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix><KeyCount>${keys.length}</KeyCount><MaxKeys>1000</MaxKeys>${encodingType !== undefined ? `<EncodingType>${encodingType}</EncodingType>` : ''}<IsTruncated>false</IsTruncated>${keys.map((key) => `<Contents><Key>${key}</Key><ETag>&quot;e&quot;</ETag><Size>3</Size></Contents>`).join('')}</ListBucketResult>`;
  const store = () => s3Store({ bucket: 'b', endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1' });

  it('decodes `+` as a space and percent-escapes', async () => {
    body = page(['p/a+b', 'p/a%2Bb', 'p/%ED%95%9C%0D'], 'url');
    expect(await listAll(store(), 'p/')).toEqual(['p/a b', 'p/a+b', 'p/한\r']);
  });

  it('takes the keys as they are from a store that ignores the encoding', async () => {
    body = page(['p/a%2Bb', 'p/a+b'], undefined);
    expect(await listAll(store(), 'p/')).toEqual(['p/a%2Bb', 'p/a+b']);
  });

  it('ends typed on a key that does not decode', async () => {
    body = page(['p/%E0%A4%A'], 'url');
    await expect(listAll(store(), 'p/')).rejects.toMatchObject({ code: 'Internal', provider: 's3' });
  });
});

describe('Azure blob names the SDK would read otherwise, on Azurite', () => {
  // CR, CRLF and a trailing CR (Azurite writes each CR as `&#xD;`), names that sort between a
  // CR name and its misread form (`k/cr x`, `k/cr!x`: a marker misread skipped them), the text of
  // a reference itself, and other characters an XML round trip could change.
  const names = [
    'k/cr\rx',
    'k/cr x',
    'k/cr!x',
    'k/crlf\r\nx',
    'k/trail\r',
    'k/lf\nx',
    'k/tab\tx',
    'k/ref&#xD;x',
    'k/amp&amp;x<>"\'',
    'k/del\u007fx',
    'k/nel\u0085x',
    'k/ls\u2028x',
  ];

  it.each([1, 1000])(
    'are listed as stored (pages of %i) and migrated, none vanished',
    async (pageSize) => {
      const uri = `${await freshBucket('azurite')}/k/`;
      const e = endpointsFor('azurite');
      const { store } = parseObjectLocation(uri, e);
      const want = new Map<string, string>();
      for (const name of names) {
        const pt = Buffer.from(`plaintext of ${name}`);
        await store.put(name, await sealEnvelope(pt, { recipients: [k.from], keys: k.keys }));
        want.set(name, sha(pt));
      }
      const paged = azureBlobStore({
        account: 'devstoreaccount1',
        container: uri.split('/')[3] as string,
        connectionString: e.azureConnectionString as string,
        pageSize,
      });
      expect((await listAll(paged, 'k/')).sort()).toEqual([...names].sort());
      const report = await runShard({
        location: { store: paged, prefix: 'k/' },
        from: k.from,
        to: k.to,
        keys: k.keys,
      });
      expect(report.failures).toEqual([]);
      expect(report.counts).toMatchObject({
        listed: names.length,
        migrated: names.length,
        skipped: 0,
        vanished: 0,
        failed: 0,
      });
      for (const [name, digest] of want) {
        const opened = await openEnvelope(await readAll((await store.get(name)).body), {
          trust: [k.to],
          keys: k.keys,
        });
        expect(sha(opened.plaintext), JSON.stringify(name)).toBe(digest);
      }
    },
    60_000,
  );

  it('a name Azurite cannot list (a C0 control character) fails the run typed, never reports it ok', async () => {
    const uri = `${await freshBucket('azurite')}/k/`;
    const { store } = parseObjectLocation(uri, endpointsFor('azurite'));
    await store.put(
      'k/c1\u0001x',
      await sealEnvelope(Buffer.from('x'), { recipients: [k.from], keys: k.keys }),
    );
    // Azurite answers the listing 500 (Azure writes such a name percent-encoded, Encoded="true").
    await expect(
      runShard({ location: uri, endpoints: endpointsFor('azurite'), from: k.from, to: k.to, keys: k.keys }),
    ).rejects.toMatchObject({ code: 'Unavailable', provider: 'azblob' });
  }, 90_000);
});

describe('an Azure stand-in answering names as Azure may write them', () => {
  let server: Server;
  let port = 0;
  let pages: Record<string, string> = {};
  let markers: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      const marker = new URL(req.url ?? '/', 'http://x').searchParams.get('marker') ?? '';
      markers.push(marker);
      res.writeHead(200, { 'content-type': 'application/xml', 'x-ms-version': '2025-01-05' });
      res.end(pages[marker] ?? pages['']);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const page = (names: string[], next = '') =>
    `<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="http://127.0.0.1/devstoreaccount1/" ContainerName="c"><Prefix>p/</Prefix><MaxResults>1000</MaxResults><Blobs>${names.map((n) => `<Blob>${n}<Properties><Etag>0x8D0</Etag><Content-Length>3</Content-Length><BlobType>BlockBlob</BlobType></Properties></Blob>`).join('')}</Blobs><NextMarker>${next}</NextMarker></EnumerationResults>`;
  const store = () =>
    azureBlobStore({
      account: 'devstoreaccount1',
      container: 'c',
      connectionString: `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${Buffer.from('k'.repeat(64)).toString('base64')};BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`,
    });

  it('decodes references, keeps a raw CR, takes percent-encoded names and follows the marker as written', async () => {
    markers = [];
    pages = {
      '': page(['<Name>p/a&#13;b</Name>', '<Name>p/c&#xD;</Name>'], 'p/c&#xD;'),
      'p/c\r': page([
        '<Name>p/d\rraw</Name>',
        '<Name Encoded="true">p%2Fe%01%EF%BF%BE</Name>',
        '<Name>p/f&amp;#xD;&lt;</Name>',
      ]),
    };
    expect(await listAll(store(), 'p/')).toEqual([
      'p/a\rb',
      'p/c\r',
      'p/d\rraw',
      'p/e\u0001\ufffe',
      'p/f&#xD;<',
    ]);
    expect(markers).toEqual(['', 'p/c\r']);
  });

  it('ends typed on a name it cannot read', async () => {
    for (const bad of [
      '<Name>p/a&bogus;</Name>',
      '<Name>p/a&#0;</Name>',
      '<Name Encoded="true">p/%E0%A4%A</Name>',
    ]) {
      pages = { '': page([bad]) };
      await expect(listAll(store(), 'p/'), bad).rejects.toMatchObject({
        code: 'Internal',
        provider: 'azblob',
      });
    }
  });
});

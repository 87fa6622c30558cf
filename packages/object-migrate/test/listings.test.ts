/**
 * What a store reads back that it must not believe: a listing that repeats or cycles its page
 * token, says it is truncated without a token, repeats keys under fresh tokens or lists an object
 * without a key ends typed instead of looping, restarting or reporting a partial listing as
 * complete (answers a real store never gives, so a stand-in HTTP server plays each service); a
 * version that is not one entity tag or generation never becomes an unconditional write (on the
 * real emulators).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { KeyportError } from '@keyport/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { azureBlobStore } from '../src/azure-blob.js';
import { gcsStore } from '../src/gcs.js';
import { parseObjectLocation } from '../src/location.js';
import { s3Store } from '../src/s3.js';
import type { ObjectStore } from '../src/store.js';
import { EMULATORS, endpointsFor, freshBucket, readAll } from './helpers/stores.js';

/** One page as the stand-in answers it: keys, the token to the next page, S3's IsTruncated. */
interface Page {
  readonly keys: readonly (string | undefined)[];
  readonly next?: string;
  readonly truncated?: boolean;
}

type Flavour = 's3' | 'gs' | 'azblob';

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function answer(flavour: Flavour, page: Page, res: ServerResponse): void {
  if (flavour === 'gs') {
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({
        kind: 'storage#objects',
        items: page.keys.map((name) => ({ name, size: '3', generation: '1', bucket: 'b' })),
        ...(page.next !== undefined ? { nextPageToken: page.next } : {}),
      }),
    );
    return;
  }
  res.setHeader('content-type', 'application/xml');
  if (flavour === 's3') {
    const contents = page.keys
      .map(
        (k) =>
          `<Contents>${k !== undefined ? `<Key>${xml(k)}</Key>` : ''}<LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>&quot;e&quot;</ETag><Size>3</Size><StorageClass>STANDARD</StorageClass></Contents>`,
      )
      .join('');
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix><KeyCount>${page.keys.length}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>${page.truncated ?? page.next !== undefined}</IsTruncated>${contents}${page.next !== undefined ? `<NextContinuationToken>${xml(page.next)}</NextContinuationToken>` : ''}</ListBucketResult>`,
    );
    return;
  }
  const blobs = page.keys
    .map(
      (k) =>
        `<Blob><Name>${xml(k ?? '')}</Name><Properties><Last-Modified>Mon, 01 Jan 2024 00:00:00 GMT</Last-Modified><Etag>0x8D0</Etag><Content-Length>3</Content-Length><BlobType>BlockBlob</BlobType></Properties><Metadata /></Blob>`,
    )
    .join('');
  res.end(
    `<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="http://127.0.0.1/devstoreaccount1/" ContainerName="c"><Prefix>p/</Prefix><MaxResults>1000</MaxResults><Blobs>${blobs}</Blobs><NextMarker>${xml(page.next ?? '')}</NextMarker></EnumerationResults>`,
  );
}

/** The token a listing request carries ('' for the first page). */
function tokenOf(flavour: Flavour, req: IncomingMessage): string {
  const q = new URL(req.url ?? '/', 'http://x').searchParams;
  const name = flavour === 's3' ? 'continuation-token' : flavour === 'gs' ? 'pageToken' : 'marker';
  return q.get(name) ?? '';
}

let server: Server;
let port = 0;
let flavour: Flavour = 's3';
let pages: Record<string, Page> = {};
let requests = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    requests++;
    const page = pages[tokenOf(flavour, req)];
    if (page === undefined) {
      // A restart or an unknown token: an empty last page, so a listing that started over ends.
      answer(flavour, { keys: [] }, res);
      return;
    }
    answer(flavour, page, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
});
afterEach(() => {
  requests = 0;
});

function standIn(f: Flavour): ObjectStore {
  flavour = f;
  if (f === 's3') return s3Store({ bucket: 'b', endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1' });
  if (f === 'gs') return gcsStore({ bucket: 'b', apiEndpoint: `http://127.0.0.1:${port}`, projectId: 'p' });
  return azureBlobStore({
    account: 'devstoreaccount1',
    container: 'c',
    connectionString: `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${Buffer.from('k'.repeat(64)).toString('base64')};BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`,
  });
}

/** The listing's keys, or its error; a listing past 200 entries is taken to loop. */
async function listed(store: ObjectStore): Promise<{ keys: string[]; error?: unknown }> {
  const keys: string[] = [];
  try {
    for await (const e of store.list('p/')) {
      keys.push(e.key);
      if (keys.length > 200) return { keys, error: new Error('the listing loops') };
    }
  } catch (error) {
    return { keys, error };
  }
  return { keys };
}

const FLAVOURS: Flavour[] = ['s3', 'gs', 'azblob'];

describe.each(FLAVOURS)('a %s listing the service answers badly', (f) => {
  it('a page token repeated: Internal after the pages it gave, not an endless listing', async () => {
    pages = { '': { keys: ['p/a'], next: 'T1' }, T1: { keys: ['p/b'], next: 'T1' } };
    const out = await listed(standIn(f));
    expect(out.error).toBeInstanceOf(KeyportError);
    expect(out.error).toMatchObject({ code: 'Internal' });
    expect(out.keys).toEqual(['p/a', 'p/b']);
    expect(requests).toBeLessThanOrEqual(3);
  });

  it('page tokens that cycle over empty pages: Internal, not an endless listing', async () => {
    pages = {
      '': { keys: ['p/a'], next: 'A' },
      A: { keys: [], next: 'B' },
      B: { keys: [], next: 'A' },
    };
    const out = await listed(standIn(f));
    expect(out.error).toMatchObject({ code: 'Internal' });
    expect(out.keys).toEqual(['p/a']);
    expect(requests).toBeLessThanOrEqual(4);
  });

  it('the same keys again under fresh tokens: Internal before any key is given twice', async () => {
    pages = {
      '': { keys: ['p/a', 'p/b'], next: 'T1' },
      T1: { keys: ['p/b', 'p/c'], next: 'T2' },
      T2: { keys: ['p/d'] },
    };
    const out = await listed(standIn(f));
    expect(out.error).toMatchObject({ code: 'Internal' });
    expect(out.keys).toEqual(['p/a', 'p/b']);
  });

  it('a key twice on one page: Internal', async () => {
    pages = { '': { keys: ['p/a', 'p/a'] } };
    const out = await listed(standIn(f));
    expect(out.error).toMatchObject({ code: 'Internal' });
    expect(out.keys).toEqual(['p/a']);
  });

  it('a listing the service answers well is given whole', async () => {
    pages = { '': { keys: ['p/a', 'p/b'], next: 'T1' }, T1: { keys: ['p/c'] } };
    expect(await listed(standIn(f))).toEqual({ keys: ['p/a', 'p/b', 'p/c'] });
  });
});

describe('an S3 listing the service answers badly', () => {
  it('IsTruncated with no continuation token: Internal, neither a restart nor a silent end', async () => {
    pages = { '': { keys: ['p/a'], truncated: true } };
    const out = await listed(standIn('s3'));
    expect(out.error).toMatchObject({ code: 'Internal' });
    expect(out.keys).toEqual(['p/a']);
    expect(requests).toBe(1);
  });

  it('an entry without a key: Internal, not skipped as if the listing were complete', async () => {
    pages = { '': { keys: ['p/a', undefined, 'p/c'] } };
    const out = await listed(standIn('s3'));
    expect(out.error).toMatchObject({ code: 'Internal' });
    expect(out.keys).toEqual(['p/a']);
  });
});

describe.each(EMULATORS)('versions that would make a conditional write unconditional, on %s', (emulator) => {
  it('each is InvalidArgument and the object is left as it was', async () => {
    const { store } = parseObjectLocation(`${await freshBucket(emulator)}/`, endpointsFor(emulator));
    await store.put('v', Buffer.from('theirs'));
    const bad =
      emulator === 'fake-gcs-server'
        ? ['abc', '1.5', '0', '-1', ' 1', '1e3', '99999999999999999999']
        : ['*', 'W/"x"', 'x', '"a", "b"', '"a", *', '"a"\r\nx-h: 1'];
    for (const version of bad) {
      for (const body of [Buffer.from('ours'), (async function* () {})()]) {
        await expect(
          store.put('v', body, { condition: { ifVersion: version } }),
          version,
        ).rejects.toMatchObject({ code: 'InvalidArgument' });
      }
      expect((await readAll((await store.get('v')).body)).toString(), version).toBe('theirs');
    }
  }, 30_000);

  it('keys past the basic multilingual plane and past U+E000 list in the order the check expects', async () => {
    const { store } = parseObjectLocation(`${await freshBucket(emulator)}/`, endpointsFor(emulator));
    // UTF-16 puts the surrogate pair of U+1F600 before U+FF01; UTF-8 (the services' order) after.
    const names = ['p/a', 'p/\u00fc', 'p/\uff01', 'p/\u{1f600}', 'p/\u{1f600}x', 'p/z'];
    for (const name of names) await store.put(name, Buffer.from('x'));
    const keys: string[] = [];
    for await (const e of store.list('p/')) keys.push(e.key);
    expect([...keys].sort()).toEqual([...names].sort());
  }, 30_000);
});

describe('object names Cloud Storage does not allow, on fake-gcs-server', () => {
  it('`.` and `..` are InvalidArgument on every call, and the bucket their URL reaches is untouched', async () => {
    const { store } = parseObjectLocation(
      `${await freshBucket('fake-gcs-server')}/`,
      endpointsFor('fake-gcs-server'),
    );
    for (const name of ['.', '..']) {
      await expect(store.delete(name), name).rejects.toMatchObject({ code: 'InvalidArgument' });
      await expect(store.get(name), name).rejects.toMatchObject({ code: 'InvalidArgument' });
      await expect(store.put(name, Buffer.from('x')), name).rejects.toMatchObject({
        code: 'InvalidArgument',
      });
    }
    // The (empty) bucket is still there.
    await store.put('after', Buffer.from('x'));
    expect((await listed(store)).keys).toEqual([]);
    expect((await readAll((await store.get('after')).body)).toString()).toBe('x');
  }, 30_000);
});

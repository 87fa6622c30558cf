/**
 * What a store reads back that it must not believe: a listing that repeats or cycles its page
 * token, says it is truncated without a token, repeats keys under fresh tokens (on Azure too,
 * whose several listing orders are each taken), answers empty pages with fresh tokens forever,
 * answers a page far over the size asked or lists an object without a key ends typed instead of
 * looping, restarting, holding the page or reporting a partial listing as complete (answers a
 * real store never gives, so a stand-in HTTP server plays each service); the order each emulator
 * lists in is the one the check expects; a version that is not one entity tag or generation never
 * becomes an unconditional write (on the real emulators).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { KeyportError } from '@keyport/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { azureBlobStore } from '../src/azure-blob.js';
import { gcsStore } from '../src/gcs.js';
import { parseObjectLocation } from '../src/location.js';
import { s3Store } from '../src/s3.js';
import { MAX_EMPTY_PAGES, type ObjectStore } from '../src/store.js';
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
/** Pages made per request instead of `pages`: the request's token and how many came before. */
let generate: ((token: string, request: number) => Page) | undefined;
let requests = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    requests++;
    if (generate !== undefined) {
      answer(flavour, generate(tokenOf(flavour, req), requests), res);
      return;
    }
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
  generate = undefined;
});

function standIn(f: Flavour, pageSize?: number): ObjectStore {
  flavour = f;
  const size = pageSize !== undefined ? { pageSize } : {};
  if (f === 's3')
    return s3Store({ bucket: 'b', endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', ...size });
  if (f === 'gs')
    return gcsStore({ bucket: 'b', apiEndpoint: `http://127.0.0.1:${port}`, projectId: 'p', ...size });
  return azureBlobStore({
    account: 'devstoreaccount1',
    container: 'c',
    connectionString: `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${Buffer.from('k'.repeat(64)).toString('base64')};BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`,
    ...size,
  });
}

/** The listing's keys, or its error; a listing past `most` entries (200) is taken to loop. */
async function listed(store: ObjectStore, most = 200): Promise<{ keys: string[]; error?: unknown }> {
  const keys: string[] = [];
  try {
    for await (const e of store.list('p/')) {
      keys.push(e.key);
      if (keys.length > most) return { keys, error: new Error('the listing loops') };
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

/** `n` keys under `p/` in every order the guard knows (digits only). */
const numbered = (n: number, from = 0): string[] =>
  Array.from({ length: n }, (_, i) => `p/${String(from + i).padStart(7, '0')}`);

describe.each(FLAVOURS)('a %s listing that answers far more than asked, or never ends', (f) => {
  it('a page far over the page size asked: Internal before any of its entries is given', async () => {
    // Asked for 1000 (the default); a server (or proxy) answers 5000 in one page.
    pages = { '': { keys: numbered(5000) } };
    const out = await listed(standIn(f));
    expect(out.error).toBeInstanceOf(KeyportError);
    expect(out.error).toMatchObject({ code: 'Internal' });
    expect((out.error as Error).message).toContain('a page of 5000 entries when asked for at most 1000');
    expect(out.keys).toEqual([]);
    expect(requests).toBe(1);
  });

  it('a small page size answered with up to 1000 more is taken; past that, Internal', async () => {
    // A store that ignores a page size of 10 and answers its own 1000 is no fault.
    pages = { '': { keys: numbered(1010), next: 'T1' }, T1: { keys: numbered(5, 1010) } };
    expect(await listed(standIn(f, 10), 2000)).toEqual({ keys: numbered(1015) });
    pages = { '': { keys: numbered(1011) } };
    const out = await listed(standIn(f, 10), 2000);
    expect(out.error).toMatchObject({ code: 'Internal' });
    expect(out.keys).toEqual([]);
  });

  it(`empty pages with a fresh token each, forever: Internal after ${MAX_EMPTY_PAGES} in a row`, {
    timeout: 180_000,
  }, async () => {
    // A key first, then nothing but empty pages, each leading to a token never seen before.
    generate = (token, n) => (token === '' ? { keys: ['p/a'], next: 'E1' } : { keys: [], next: `E${n}` });
    const out = await listed(standIn(f));
    expect(out.error).toBeInstanceOf(KeyportError);
    expect(out.error).toMatchObject({ code: 'Internal' });
    expect((out.error as Error).message).toContain(`${MAX_EMPTY_PAGES} empty pages in a row`);
    expect(out.keys).toEqual(['p/a']);
    expect(requests).toBe(MAX_EMPTY_PAGES + 1);
  });

  it('beforePage runs before every page request, empty pages included (what a rate limit counts)', async () => {
    // Three keys, then four empty pages, then the end: eight page requests.
    generate = (_token, n) =>
      n <= 3 ? { keys: [`p/${n}`], next: `T${n}` } : n < 8 ? { keys: [], next: `T${n}` } : { keys: [] };
    let hooked = 0;
    let ahead = 0;
    const keys: string[] = [];
    for await (const e of standIn(f).list('p/', undefined, async () => {
      hooked++;
      // Called before its page's request: never more hooks than requests plus the one about to go.
      ahead = Math.max(ahead, hooked - requests);
    }))
      keys.push(e.key);
    expect(keys).toEqual(['p/1', 'p/2', 'p/3']);
    expect(requests).toBe(8);
    expect(hooked).toBe(8);
    expect(ahead).toBe(1);
  });

  it('keys that come round again on later pages under fresh tokens: Internal, none given twice', async () => {
    // p/a, p/b, p/a, p/b, ...: each page holds one key, so no page repeats the one before it.
    generate = (_token, n) => ({ keys: [n % 2 === 1 ? 'p/a' : 'p/b'], next: `T${n}` });
    const out = await listed(standIn(f));
    expect(out.error).toBeInstanceOf(KeyportError);
    expect(out.error).toMatchObject({ code: 'Internal' });
    expect(out.keys).toEqual(['p/a', 'p/b']);
  });
});

describe('an Azure listing in the orders Azure lists in', () => {
  it('flat order by UTF-16 code units (Azurite, flat-namespace accounts), across pages, is taken', async () => {
    // U+1F600 is a surrogate pair (0xD83D...), before U+E000 and U+FF01 in UTF-16.
    pages = {
      '': { keys: ['p/A', 'p/Z', 'p/a', 'p/a-b'], next: 'T1' },
      T1: { keys: ['p/a.b', 'p/a/c', 'p/\u{1f600}', 'p/\u{1f600}x'], next: 'T2' },
      T2: { keys: ['p/\ue000', 'p/\uff01'] },
    };
    expect((await listed(standIn('azblob'))).error).toBeUndefined();
  });

  it('flat order by UTF-8 bytes is taken too', async () => {
    pages = { '': { keys: ['p/a', 'p/\ue000', 'p/\uff01', 'p/\u{1f600}'] } };
    expect((await listed(standIn('azblob'))).error).toBeUndefined();
  });

  it('the depth-first order of a hierarchical-namespace account is taken', async () => {
    // As an ADLS Gen2 account lists (Azure/azure-sdk-for-go#24210): a directory's paths follow it.
    pages = {
      '': { keys: ['p/A', 'p/A/dat1', 'p/A-B', 'p/A-B/dat2', 'p/A-B-C'], next: 'T1' },
      T1: { keys: ['p/A-C', 'p/A.C', 'p/A.C/dat3', 'p/AB', 'p/AB/AB', 'p/AB/dat4', 'p/AB.txt', 'p/ABC'] },
    };
    const out = await listed(standIn('azblob'));
    expect(out.error).toBeUndefined();
    expect(out.keys).toHaveLength(13);
  });

  it('a listing no order explains: Internal, though each key is new', async () => {
    // Depth-first (`/` first) up to p/a-b, which leaves no flat order; p/a/y then breaks that one.
    pages = { '': { keys: ['p/a/x', 'p/a-b'], next: 'T1' }, T1: { keys: ['p/a/y'] } };
    const out = await listed(standIn('azblob'));
    expect(out.error).toMatchObject({ code: 'Internal' });
    expect(out.keys).toEqual(['p/a/x', 'p/a-b']);
    // Two keys whose order UTF-8 and UTF-16 disagree on, then the first again.
    pages = { '': { keys: ['p/\uff01', 'p/\u{1f600}'], next: 'T1' }, T1: { keys: ['p/\uff01'] } };
    const again = await listed(standIn('azblob'));
    expect(again.error).toMatchObject({ code: 'Internal' });
    expect(again.keys).toEqual(['p/\uff01', 'p/\u{1f600}']);
  });
});

describe.each(EMULATORS)('versions that would make a conditional write unconditional, on %s', (emulator) => {
  it('each is InvalidArgument and the object is left as it was', async () => {
    const { store } = parseObjectLocation(`${await freshBucket(emulator)}/`, endpointsFor(emulator));
    await store.put('v', Buffer.from('theirs'));
    const bad =
      emulator === 'fake-gcs-server'
        ? [
            'abc',
            '1.5',
            '0',
            '-1',
            ' 1',
            '1e3',
            '99999999999999999999',
            '1#',
            '#1',
            '1#0',
            '1#1#1',
            '1#99999999999999999999',
          ]
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
    // UTF-16 puts the surrogate pair of U+1F600 before U+E000 and U+FF01; UTF-8 after. S3 and
    // Cloud Storage list by UTF-8 bytes; Azurite compares UTF-16 code units (JavaScript's own
    // string order), as Azure's flat-namespace accounts were measured to.
    const names = ['p/a', 'p/B', 'p/Z', 'p/a-b', 'p/a.b', 'p/a/c', 'p/\u00fc', 'p/\ue000', 'p/\uff01'];
    names.push('p/\u{1f600}', 'p/\u{1f600}x', 'p/z');
    for (const name of names) await store.put(name, Buffer.from('x'));
    const keys: string[] = [];
    for await (const e of store.list('p/')) keys.push(e.key);
    const utf8 = [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect(keys).toEqual(emulator === 'azurite' ? [...names].sort() : utf8);
  }, 30_000);
});

describe('the order Azurite lists in', () => {
  it('UTF-16 code units, upper case first, page after page: the Azure store takes it whole', async () => {
    const uri = await freshBucket('azurite');
    const container = uri.split('/').pop() as string;
    // Two to a page, so every neighbouring pair is also checked across a page boundary.
    const store = azureBlobStore({
      account: 'devstoreaccount1',
      container,
      connectionString: endpointsFor('azurite').azureConnectionString as string,
      pageSize: 2,
    });
    const names = ['p/\uff01', 'p/\u{1f600}', 'p/\ue000', 'p/z', 'p/Z', 'p/a/c', 'p/a.b', 'p/a-b', 'p/a'];
    names.push('p/B', 'p/\u{1f600}x', 'p/\u00fc', 'p/0', 'p/_');
    for (const name of names) await store.put(name, Buffer.from('x'));
    expect(await listed(store)).toEqual({ keys: [...names].sort() });
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

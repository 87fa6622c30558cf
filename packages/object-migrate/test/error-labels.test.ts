/**
 * A failure is reported as what it is, and retried only when another attempt can change it: a
 * fault in the code (a TypeError while a body is uploaded) is `Internal`, not `Unavailable`
 * retried `maxAttempts` times behind backoff; a KeyportError an SDK wrapped comes out as itself;
 * an answer refusing the request (405, 411, 413, 416, a 301 to another region) is
 * `InvalidArgument`, asked once, and a 501 or 505 `Unsupported`, asked once; a connection lost while a body streams in is `Unavailable`
 * (S3 gave an untyped `Error: aborted`, Azure an `AbortError` that became `Aborted`, and the object
 * failed at once). On the three emulators, and a stand-in HTTP server where a real one cannot
 * answer so.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { KeyportError } from '@keyport/core';
import { sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { azureBlobStore } from '../src/azure-blob.js';
import { gcsStore } from '../src/gcs.js';
import { parseObjectLocation } from '../src/location.js';
import { migrateObject } from '../src/migrate-object.js';
import { s3Store } from '../src/s3.js';
import type { ObjectStore } from '../src/store.js';
import { providerError } from '../src/throttle.js';
import { type TestKeys, testKeys } from './helpers/keys.js';
import { EMULATORS, endpointsFor, freshBucket } from './helpers/stores.js';

let k: TestKeys;
beforeAll(async () => {
  k = await testKeys();
});
afterAll(async () => {
  await k?.close();
});

/** A socket error as Node gives it. */
const socketError = (code: string) =>
  Object.assign(new Error(`read ${code}`), { code, errno: -104, syscall: 'read' });

describe('providerError labels what failed', () => {
  it('a TypeError with no HTTP answer is Internal, not retried; a network failure stays Unavailable', () => {
    const bug = providerError('azblob', 'put', undefined, 'TypeError', new TypeError('x is not a function'));
    expect(bug).toMatchObject({ code: 'Internal', retryable: false });
    expect(bug.message).toContain('TypeError');
    // An SDK's wrapper around a bug: still the bug.
    const wrapper = Object.assign(new Error('request failed'), {
      name: 'GaxiosError',
      cause: new RangeError('offset out of range'),
    });
    expect(providerError('gs', 'put', undefined, undefined, wrapper)).toMatchObject({ code: 'Internal' });
    // undici's `fetch failed` is a TypeError over a socket error: the connection, retried.
    const fetchFailed = Object.assign(new Error('fetch failed'), {
      name: 'GaxiosError',
      cause: new TypeError('fetch failed', { cause: socketError('ECONNRESET') }),
    });
    expect(providerError('gs', 'get', undefined, undefined, fetchFailed)).toMatchObject({
      code: 'Unavailable',
    });
    // An answer that does not parse (a proxy's HTML page) may parse on another attempt.
    expect(
      providerError('gs', 'get', undefined, 'SyntaxError', new SyntaxError('Unexpected token <')),
    ).toMatchObject({ code: 'Unavailable' });
    // undici's body cut short: `terminated`, over its socket error or alone.
    expect(providerError('gs', 'get', undefined, 'TypeError', new TypeError('terminated'))).toMatchObject({
      code: 'Unavailable',
    });
    expect(providerError('s3', 'get', undefined, 'Error', socketError('ECONNRESET'))).toMatchObject({
      code: 'Unavailable',
    });
    expect(
      providerError('azblob', 'get', undefined, 'REQUEST_SEND_ERROR', new Error('socket hang up')),
    ).toMatchObject({ code: 'Unavailable' });
  });

  it('a KeyportError an SDK wrapped comes out as itself', () => {
    const inner = new KeyportError('Integrity', 'the rewrapped object does not decrypt');
    const sdk = new Error('upload failed', { cause: new Error('stream errored', { cause: inner }) });
    expect(providerError('gs', 'put', undefined, undefined, sdk)).toBe(inner);
  });

  it('an answer refusing the request is InvalidArgument; 408 and 5xx are Unavailable', () => {
    for (const status of [301, 404, 405, 410, 411, 413, 416, 422])
      expect(providerError('s3', 'put', status, 'X', new Error('x')), String(status)).toMatchObject({
        code: 'InvalidArgument',
        retryable: false,
      });
    for (const status of [408, 500, 502, 504])
      expect(providerError('s3', 'put', status, 'X', new Error('x')), String(status)).toMatchObject({
        code: 'Unavailable',
      });
  });

  it('501 (not implemented) is Unsupported and not retryable, not an outage', () => {
    expect(providerError('s3', 'put', 501, 'NotImplemented', new Error('x'))).toMatchObject({
      code: 'Unsupported',
      retryable: false,
      provider: 's3',
    });
  });

  it('a 5xx that no retry changes is typed and not retryable; the transient ones stay Unavailable', () => {
    for (const [status, code] of [
      [505, 'Unsupported'],
      [510, 'Unsupported'],
      [506, 'Internal'],
      [508, 'Internal'],
      [511, 'AccessDenied'],
    ] as const) {
      const e = providerError('gs', 'get', status, 'X', new Error('x'));
      expect(e, String(status)).toMatchObject({ code, retryable: false, provider: 'gs' });
      expect(e.message, String(status)).toContain(`(${status} X)`);
    }
    // 507 Insufficient Storage: RFC 4918 calls it temporary.
    for (const status of [500, 502, 504, 507, 509, 520, 599])
      expect(providerError('s3', 'put', status, 'X', new Error('x')), String(status)).toMatchObject({
        code: 'Unavailable',
        retryable: true,
      });
  });
});

const seal = async (bytes: number) =>
  Buffer.from(
    await sealEnvelope(Buffer.alloc(bytes, 3), { recipients: [k.from], keys: k.keys, frameLength: 4096 }),
  );

describe.each(EMULATORS)('a fault while a body is uploaded, on %s', (emulator) => {
  it('fails the object once as Internal, not as Unavailable after maxAttempts uploads', async () => {
    const uri = `${await freshBucket(emulator)}/e/`;
    const { store: real } = parseObjectLocation(uri, endpointsFor(emulator));
    await real.put('e/obj', await seal(20_000));
    let puts = 0;
    // The real upload, given a body that fails with a bug after its first bytes.
    const store: ObjectStore = {
      ...real,
      list: (p, s) => real.list(p, s),
      get: (key, signal) => real.get(key, signal),
      delete: (key, signal) => real.delete(key, signal),
      put(key, body, o) {
        puts++;
        const faulty = (async function* () {
          for await (const c of body as AsyncIterable<Uint8Array>) {
            yield c;
            throw new TypeError("Cannot read properties of undefined (reading 'length')");
          }
        })();
        return real.put(key, faulty, o);
      },
    };
    const error = await migrateObject(store, 'e/obj', { from: k.from, to: k.to, keys: k.keys }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'Internal' });
    expect(puts).toBe(1);
  });
});

describe.each(EMULATORS)('a bucket that does not exist, on %s', (emulator) => {
  it('is NotFound naming the bucket, not an object', async () => {
    const uri = await freshBucket(emulator);
    const missing = `${uri.slice(0, -4)}zzzz/p/`;
    const { store } = parseObjectLocation(missing, endpointsFor(emulator));
    const bucket = emulator === 'azurite' ? 'container' : 'bucket';
    const listing = (async () => {
      for await (const _ of store.list('p/'));
    })();
    await expect(listing).rejects.toMatchObject({
      code: 'NotFound',
      message: `${store.provider} list: ${bucket} not found`,
    });
    if (emulator !== 'fake-gcs-server')
      await expect(store.get('p/x')).rejects.toMatchObject({
        code: 'NotFound',
        message: `${store.provider} get: ${bucket} not found`,
      });
  });
});

/** What the stand-in answers each request with. */
let handler: (req: IncomingMessage, res: ServerResponse) => void = (_q, res) => res.end();
let server: Server;
let port = 0;
let requests = 0;
beforeAll(async () => {
  server = createServer((req, res) => {
    requests++;
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

type Flavour = 's3' | 'azblob' | 'gs';
function standIn(f: Flavour): ObjectStore {
  if (f === 's3') return s3Store({ bucket: 'b', endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1' });
  if (f === 'gs') return gcsStore({ bucket: 'b', apiEndpoint: `http://127.0.0.1:${port}`, projectId: 'p' });
  return azureBlobStore({
    account: 'devstoreaccount1',
    container: 'c',
    connectionString: `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${Buffer.from('k'.repeat(64)).toString('base64')};BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`,
  });
}

/** An error answer in the service's own format. */
function refuse(f: Flavour, status: number, res: ServerResponse): void {
  if (f === 'gs') {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: status, message: 'refused', errors: [{ reason: 'refused' }] } }));
    return;
  }
  res.writeHead(status, {
    'content-type': 'application/xml',
    ...(f === 'azblob' ? { 'x-ms-error-code': 'Refused', 'x-ms-version': '2025-01-05' } : {}),
  });
  res.end(
    `<?xml version="1.0" encoding="UTF-8"?><Error><Code>Refused</Code><Message>refused</Message></Error>`,
  );
}

describe.each(['s3', 'azblob', 'gs'] as const)('answers of the %s stand-in', (flavour) => {
  it.each([405, 411, 413, 416])('a read refused with %i is InvalidArgument, asked once', async (status) => {
    handler = (_req, res) => refuse(flavour, status, res);
    requests = 0;
    const error = await migrateObject(standIn(flavour), 'p/x', { from: k.from, to: k.to, keys: k.keys }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'InvalidArgument' });
    expect(requests).toBe(1);
  });
});

describe.each(['s3', 'azblob', 'gs'] as const)(
  'a %s stand-in that does not implement the request or its HTTP version',
  (flavour) => {
    // A service (or an S3-compatible store) that does not implement what is asked (501), or a
    // service or proxy refusing the HTTP version the SDK speaks (505), answers the same to every
    // attempt: retried as Unavailable, it cost maxAttempts requests and backoff.
    it.each([501, 505])('a read answered %i is Unsupported, asked once', async (status) => {
      handler = (_req, res) => refuse(flavour, status, res);
      requests = 0;
      const error = await migrateObject(standIn(flavour), 'p/x', {
        from: k.from,
        to: k.to,
        keys: k.keys,
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toMatchObject({ code: 'Unsupported', retryable: false, provider: flavour });
      expect(requests).toBe(1);
    });
  },
);

describe.each(['s3', 'azblob'] as const)('a %s body cut short', (flavour) => {
  it('is Unavailable (retried), not an untyped error or Aborted', async () => {
    handler = (req, res) => {
      const q = new URL(req.url ?? '/', 'http://x').searchParams;
      if (q.has('tagging') || q.get('comp') === 'tags') {
        res.writeHead(200, { 'content-type': 'application/xml', 'x-ms-version': '2025-01-05' });
        res.end('<?xml version="1.0" encoding="UTF-8"?><Tagging><TagSet></TagSet></Tagging>');
        return;
      }
      res.writeHead(200, {
        'content-length': '100000',
        etag: '"e1"',
        'last-modified': 'Mon, 01 Jan 2024 00:00:00 GMT',
        'x-ms-blob-type': 'BlockBlob',
        'x-ms-version': '2025-01-05',
      });
      // Azure's Get Blob Properties (the access tier): answered whole, only the body is cut.
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      res.write(Buffer.alloc(1000, 7));
      setTimeout(() => res.socket?.destroy(), 50);
    };
    const read = await standIn(flavour).get('p/x');
    const error = await (async () => {
      for await (const _ of read.body);
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KeyportError);
    expect(error).toMatchObject({ code: 'Unavailable', provider: flavour });
  });
});

/**
 * A get that fails after the object's body started to arrive (its tags refused, no ETag) hands
 * no body to anyone, so the store closes it itself: the connection is not held open, and the S3
 * SDK's checksum stream around the body, failing later on its own, cannot crash the process with
 * an unheard 'error'. Answers a real store does not give on demand: a stand-in HTTP server.
 */
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { azureBlobStore } from '../src/azure-blob.js';
import { s3Store } from '../src/s3.js';
import type { ObjectStore } from '../src/store.js';

let server: Server;
let port = 0;
let withEtag = true;
/** The sockets that carried a body, and whether each was closed by the client. */
const bodies: { socket: Socket; closed: boolean }[] = [];
const uncaught: unknown[] = [];
const onUncaught = (e: unknown) => uncaught.push(e);

beforeAll(async () => {
  process.on('uncaughtException', onUncaught);
  server = createServer((req, res) => {
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    if (q.has('tagging') || q.get('comp') === 'tags') {
      res.statusCode = 403;
      res.setHeader('content-type', 'application/xml');
      res.end(
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>denied</Message></Error>',
      );
      return;
    }
    // The object: headers and half its body, then nothing more (a slow or stuck service).
    const entry = { socket: req.socket, closed: false };
    req.socket.once('close', () => {
      entry.closed = true;
    });
    bodies.push(entry);
    res.writeHead(200, {
      'content-length': '10',
      'content-type': 'application/octet-stream',
      'last-modified': 'Mon, 01 Jan 2024 00:00:00 GMT',
      ...(withEtag ? { etag: '"e"' } : {}),
      // Not the CRC32 of the body: the S3 SDK wraps the body in a checksum stream that fails.
      'x-amz-checksum-crc32': 'AAAAAA==',
      'x-ms-blob-type': 'BlockBlob',
    });
    res.write(Buffer.alloc(5, 1));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  process.off('uncaughtException', onUncaught);
});

const stores: [string, () => ObjectStore][] = [
  ['s3', () => s3Store({ bucket: 'b', endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1' })],
  [
    'azblob',
    () =>
      azureBlobStore({
        account: 'devstoreaccount1',
        container: 'c',
        connectionString: `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${Buffer.from('k'.repeat(64)).toString('base64')};BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`,
      }),
  ],
];

describe.each(stores)('a %s get that fails after its body started', (name, make) => {
  const cases: [string, boolean, string][] = [
    ['its tags refused', true, 'AccessDenied'],
    // The Azure SDK's own download fails first on a response without an ETag.
    ...(name === 's3' ? [['no ETag', false, 'Internal'] as [string, boolean, string]] : []),
  ];
  it.each(cases)(
    '%s: typed, the body closed by the store, nothing left to crash the process',
    async (_case, etag, code) => {
      withEtag = etag;
      const before = bodies.length;
      await expect(make().get('k')).rejects.toMatchObject({ code });
      const body = bodies[before];
      expect(body).toBeDefined();
      // The store closed the connection of the body nobody will read.
      const until = Date.now() + 3_000;
      while (body?.closed !== true && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(body?.closed).toBe(true);
      // Were it still open, the service ending it now would fail the unread body.
      body?.socket.destroy();
      await new Promise((r) => setTimeout(r, 200));
      expect(uncaught).toEqual([]);
    },
  );
});

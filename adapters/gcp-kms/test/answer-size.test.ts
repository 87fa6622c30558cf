/**
 * Answers larger than any Cloud KMS sends, from stand-in servers (the test server sends none):
 * google-gax turns grpc-js's receive limit off, and its REST fallback reads answers whole, so
 * without keyport's own limit one answer could make the client buffer gigabytes. An answer over
 * the limit is refused (over gRPC from its length prefix, over REST from its Content-Length or
 * once the bytes read pass it), as Internal and not retried (the same answer would come again).
 */
import {
  createServer,
  type Server as HttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { protos } from '@google-cloud/kms';
import { credentials, Server, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';
import { Keyport } from '@keyport/core';
import { OAuth2Client } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GcpKmsProvider } from '../src/index.js';
import { MAX_ANSWER_BYTES } from '../src/options.js';
import { crc32c } from '../src/rpc.js';
import { signal, staticAuth } from './support/targets.js';

const { DecryptResponse } = protos.google.cloud.kms.v1;
const URI = 'gcp-kms://projects/p/locations/global/keyRings/r/cryptoKeys/k';

/** A Decrypt answer of `bytes` plaintext, encoded once (the stand-in sends it as it is). */
function decryptAnswer(bytes: number): Buffer {
  const plaintext = Buffer.alloc(bytes, 7);
  return Buffer.from(
    DecryptResponse.encode({ plaintext, plaintextCrc32c: { value: crc32c(plaintext) } }).finish(),
  );
}

let server: Server;
let port: number;
/** What the stand-in answers to the next Decrypt, and how many it has answered. */
let answer: Buffer = Buffer.alloc(0);
let decrypts = 0;

beforeAll(async () => {
  server = new Server();
  const raw = (b: Buffer) => b;
  const definition = {
    Decrypt: {
      path: '/google.cloud.kms.v1.KeyManagementService/Decrypt',
      requestStream: false,
      responseStream: false,
      requestSerialize: raw,
      requestDeserialize: raw,
      responseSerialize: raw,
      responseDeserialize: raw,
    },
  } as unknown as ServiceDefinition;
  server.addService(definition, {
    Decrypt: (_call: unknown, done: (e: null, b: Buffer) => void) => {
      decrypts++;
      done(null, answer);
    },
  });
  port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
});
afterAll(() => server.forceShutdown());

const provider = (extra: object = {}) =>
  new GcpKmsProvider({
    apiEndpoint: '127.0.0.1',
    port,
    sslCreds: credentials.createInsecure(),
    authClient: staticAuth(),
    ...extra,
  });

describe('an answer over the gRPC size limit', () => {
  it('is Internal, not retryable, and not retried by core', async () => {
    answer = decryptAnswer(MAX_ANSWER_BYTES); // with its framing, just over the limit
    decrypts = 0;
    const keys = new Keyport({ providers: [provider()], retry: { maxAttempts: 3, baseDelayMs: 1 } });
    // An answer taken is reported by its length (a failed match would print all its bytes).
    const outcome = await keys.decrypt(URI, Uint8Array.of(1, 2, 3)).then(
      (r) => ({ taken: r.plaintext.length }),
      (e: unknown) => e,
    );
    expect(outcome).toMatchObject({ code: 'Internal', retryable: false });
    expect(decrypts).toBe(1);
    await keys.close();
  });

  it("answers over grpc-js's own 4 MiB default but under the limit are taken (large key listings)", async () => {
    answer = decryptAnswer(5 * 1024 * 1024);
    const p = provider();
    const { plaintext } = await p.decrypt({ uri: URI }, Uint8Array.of(1, 2, 3), {}, signal());
    expect(plaintext.length).toBe(5 * 1024 * 1024);
    await p.close();
  });

  it('clientOptions may set another limit', async () => {
    answer = decryptAnswer(2 * 1024 * 1024);
    const p = provider({ clientOptions: { 'grpc.max_receive_message_length': 1024 * 1024 } });
    const outcome = await p.decrypt({ uri: URI }, Uint8Array.of(1, 2, 3), {}, signal()).then(
      (r) => ({ taken: r.plaintext.length }),
      (e: unknown) => e,
    );
    expect(outcome).toMatchObject({ code: 'Internal', retryable: false });
    await p.close();
  });
});

// ------------------------------------------------------------------ REST

/** A Decrypt answer in REST JSON, `bytes` of plaintext (base64 makes it 4/3 as long). */
function jsonAnswer(bytes: number): Buffer {
  const plaintext = Buffer.alloc(bytes, 7);
  const body = { plaintext: plaintext.toString('base64'), plaintextCrc32c: String(crc32c(plaintext)) };
  return Buffer.from(JSON.stringify(body));
}

/** 70 MiB of JSON: an answer a client without a limit takes whole (its checksum matches). */
const HUGE = jsonAnswer((70 * 1024 * 1024 * 3) / 4);
const HUGE_GZIPPED = gzipSync(HUGE, { level: 1 });

type Respond = (res: ServerResponse) => void;
let http: HttpServer;
let httpPort: number;
let respond: Respond = () => undefined;
let requests = 0;
/** How each answer's connection ended: whether all of it had been sent by then. */
let ended: Promise<{ whole: boolean }> = Promise.resolve({ whole: true });

beforeAll(async () => {
  http = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests++;
    ended = new Promise((resolve) =>
      req.socket.once('close', () => resolve({ whole: res.writableFinished })),
    );
    req.resume();
    req.once('end', () => respond(res));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  httpPort = (http.address() as AddressInfo).port;
});
afterAll(async () => {
  http.closeAllConnections();
  await new Promise((resolve) => http.close(resolve));
});

/** Writes `body` a MiB at a time, as the socket takes it (a closed socket stops the writing). */
function stream(res: ServerResponse, body: Buffer): void {
  let at = 0;
  const more = (): void => {
    while (at < body.length && !res.destroyed) {
      const chunk = body.subarray(at, at + 1024 * 1024);
      at += chunk.length;
      if (!res.write(chunk)) {
        res.once('drain', more);
        return;
      }
    }
    if (!res.destroyed) res.end();
  };
  more();
}

const answers: Record<string, Respond> = {
  'declared (Content-Length)': (res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': HUGE.length });
    stream(res, HUGE);
  },
  chunked: (res) => {
    res.writeHead(200, { 'content-type': 'application/json' }); // no length: chunked
    stream(res, HUGE);
  },
  'gzip-compressed (a small Content-Length)': (res) => {
    const headers = { 'content-type': 'application/json', 'content-encoding': 'gzip' };
    res.writeHead(200, { ...headers, 'content-length': HUGE_GZIPPED.length });
    res.end(HUGE_GZIPPED);
  },
};

const restProvider = () =>
  new GcpKmsProvider({
    transport: 'rest',
    protocol: 'http',
    apiEndpoint: '127.0.0.1',
    port: httpPort,
    authClient: staticAuth(),
  });

describe('an answer over the size limit over REST', () => {
  for (const [how, answer] of Object.entries(answers)) {
    it(`${how}: Internal, not retryable, not retried, its connection closed unread`, async () => {
      respond = answer;
      requests = 0;
      const keys = new Keyport({ providers: [restProvider()], retry: { maxAttempts: 3, baseDelayMs: 1 } });
      const outcome = await keys.decrypt(URI, Uint8Array.of(1, 2, 3)).then(
        (r) => ({ taken: r.plaintext.length }),
        (e: unknown) => e,
      );
      expect(outcome).toMatchObject({ code: 'Internal', retryable: false, provider: 'gcp-kms' });
      expect((outcome as Error).message).toContain(`limit of ${MAX_ANSWER_BYTES} bytes`);
      // A declared length over the limit is refused from the header, before any of the body is read.
      if (how.startsWith('declared')) expect((outcome as Error).message).toContain(`${HUGE.length} bytes`);
      expect(requests).toBe(1);
      // The client closes the connection: an answer streamed to it is not sent whole.
      if (how !== 'gzip-compressed (a small Content-Length)') expect(await ended).toEqual({ whole: false });
      await keys.close();
    });
  }

  it('answers under the limit are taken, compressed or not, and the client goes on working', async () => {
    const plaintext = 5 * 1024 * 1024;
    const body = jsonAnswer(plaintext);
    const p = restProvider();
    const shapes: Respond[] = [
      (res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
        res.end(body);
      },
      (res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        stream(res, body);
      },
      (res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
        res.end(gzipSync(body));
      },
    ];
    for (const shape of shapes) {
      respond = shape;
      const r = await p.decrypt({ uri: URI }, Uint8Array.of(1, 2, 3), {}, signal());
      expect(r.plaintext.length).toBe(plaintext);
    }
    // An error answer is still read and mapped as before.
    respond = (res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 404, message: 'no such key', status: 'NOT_FOUND' } }));
    };
    await expect(p.decrypt({ uri: URI }, Uint8Array.of(1, 2, 3), {}, signal())).rejects.toMatchObject({
      code: 'NotFound',
    });
    await p.close();
  });

  it("a given authClient's own transporter adapter still makes the request, under the limit", async () => {
    let adapted = 0;
    const auth = new OAuth2Client({
      transporterOptions: {
        adapter: (config, next) => {
          adapted++;
          return next(config);
        },
      },
    });
    auth.setCredentials({ access_token: 'keyport-test', expiry_date: Date.now() + 3_600_000 });
    const p = new GcpKmsProvider({
      transport: 'rest',
      protocol: 'http',
      apiEndpoint: '127.0.0.1',
      port: httpPort,
      authClient: auth,
    });
    respond = answers.chunked as Respond;
    await expect(p.decrypt({ uri: URI }, Uint8Array.of(1, 2, 3), {}, signal())).rejects.toMatchObject({
      code: 'Internal',
    });
    expect(adapted).toBe(1);
    await p.close();
  });
});

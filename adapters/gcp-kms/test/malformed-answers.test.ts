/**
 * Malformed answers to a call that returns plaintext, from stand-in servers (the test server
 * sends none): the KeyportError, and everything `util.inspect` prints of it (its cause chain
 * included), must not carry the answer's bytes, and a 2xx answer that could not be decoded is
 * Internal, not retried (as the AWS and Key Vault drivers have it). Over REST the client's own
 * errors quote the body (V8's JSON SyntaxError a snippet, gax up to 1 KiB of an undecodable error
 * answer, proto3-json-serializer a field's value); over gRPC protobufjs names only offsets.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { credentials, Server, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';
import { Keyport, KeyportError } from '@keyport/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GcpKmsProvider } from '../src/index.js';
import { staticAuth } from './support/targets.js';

const URI = 'gcp-kms://projects/p/locations/global/keyRings/r/cryptoKeys/k';
/** 32 known "key" bytes the stand-ins answer with. */
const SECRET = Buffer.from(Array.from({ length: 32 }, (_, i) => 0xa0 + i));
const B64 = SECRET.toString('base64');

/** Whatever inspect shows of the error (hidden properties too), checked for the secret. */
async function failure(keys: Keyport): Promise<{ error: KeyportError; shown: string }> {
  const error = await keys.decrypt(URI, Uint8Array.of(1, 2, 3)).then(
    (r) => ({ taken: r.plaintext.length }),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KeyportError);
  const shown = inspect(error, { depth: 10, showHidden: true });
  return { error: error as KeyportError, shown };
}

function expectNoSecret(shown: string): void {
  // The whole base64, any 8 characters of it (V8 quotes ~10 around the fault), and the hex.
  for (let at = 0; at + 8 <= B64.length; at += 4) expect(shown).not.toContain(B64.slice(at, at + 8));
  expect(shown).not.toContain(SECRET.toString('hex').slice(0, 16));
}

describe('a malformed REST answer to Decrypt', () => {
  let http: HttpServer;
  let status = 200;
  let body = '';
  let keys: Keyport;

  beforeAll(async () => {
    http = createServer((req, res) => {
      req.resume();
      req.once('end', () => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(body);
      });
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const port = (http.address() as AddressInfo).port;
    const provider = new GcpKmsProvider({
      transport: 'rest',
      protocol: 'http',
      apiEndpoint: '127.0.0.1',
      port,
      authClient: staticAuth(),
    });
    keys = new Keyport({ providers: [provider], retry: { maxAttempts: 1 } });
  });
  afterAll(async () => {
    await keys.close();
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
  });

  const answers: [string, number, string, string][] = [
    ['cut short', 200, `{"plaintext":"${B64}"`, 'the response body is not JSON'],
    ['with junk after it', 200, `{"plaintext":"${B64}"} junk`, 'the response body is not JSON'],
    ['with the value unquoted (V8 quotes it)', 200, `{"plaintext":${B64}}`, 'the response body is not JSON'],
    ['a bare token (V8 quotes it)', 200, B64, 'the response body is not JSON'],
    [
      'with a field of the wrong type (the serializer quotes it)',
      200,
      `{"plaintext":["${B64}"]}`,
      "the response's fields do not have the API's types",
    ],
    [
      'an HTTP 500 that is not JSON (gax quotes it)',
      500,
      `{"plaintext":"${B64}"`,
      'the response body is not JSON',
    ],
    ['an HTML 502 page (gax quotes it)', 502, `<html>${B64}</html>`, 'the response body is not JSON'],
    ['an HTTP 500 that is a JSON string', 500, `"${B64}"`, 'the response body is not a JSON error object'],
    ['empty', 200, '', 'the response body is empty'],
  ];
  for (const [what, answerStatus, answerBody, why] of answers) {
    it(`${what}: says the answer was malformed, keeps the status, not the body`, async () => {
      status = answerStatus;
      body = answerBody;
      const { error, shown } = await failure(keys);
      expectNoSecret(shown);
      expect(error.message).toContain(`could not be decoded (${why}); its body is not kept`);
      if (answerStatus !== 200) expect(error.message).toContain(`HTTP ${answerStatus}`);
      expect(error).toMatchObject({ provider: 'gcp-kms', keyUri: URI });
      // A 5xx keeps its row (the service failed, and may not next time); a 200 that could not be
      // decoded is a wrong answer, not a transient failure: Internal, not retried.
      expect(error.code).toBe(answerStatus === 200 ? 'Internal' : 'Unavailable');
      expect(error.retryable).toBe(answerStatus !== 200);
    });
  }

  it('a well-formed error answer still keeps the service error as the cause', async () => {
    status = 404;
    body = JSON.stringify({ error: { code: 404, message: 'no such key', status: 'NOT_FOUND' } });
    const { error } = await failure(keys);
    expect(error.code).toBe('NotFound');
    expect(String((error.cause as Error).message)).toContain('no such key');
  });
});

describe('a malformed gRPC answer to Decrypt', () => {
  let server: Server;
  let answer: Buffer = Buffer.alloc(0);
  let failWith: { code: number; details: string } | undefined;
  let keys: Keyport;

  beforeAll(async () => {
    server = new Server();
    const raw = (b: Buffer) => b;
    const path = '/google.cloud.kms.v1.KeyManagementService/Decrypt';
    const Decrypt = { path, requestStream: false, responseStream: false };
    const codec = {
      requestSerialize: raw,
      requestDeserialize: raw,
      responseSerialize: raw,
      responseDeserialize: raw,
    };
    server.addService({ Decrypt: { ...Decrypt, ...codec } } as unknown as ServiceDefinition, {
      Decrypt: (_call: unknown, done: (e: object | null, b?: Buffer) => void) =>
        failWith ? done(failWith) : done(null, answer),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    const provider = new GcpKmsProvider({
      apiEndpoint: '127.0.0.1',
      port,
      sslCreds: credentials.createInsecure(),
      authClient: staticAuth(),
    });
    keys = new Keyport({ providers: [provider], retry: { maxAttempts: 1 } });
  });
  afterAll(async () => {
    await keys.close();
    server.forceShutdown();
  });

  /** Field 1 (plaintext), length-delimited, declaring `length` bytes. */
  const plaintextField = (length = SECRET.length) => Buffer.concat([Buffer.of(0x0a, length), SECRET]);
  const answers: [string, Buffer][] = [
    ['cut short', plaintextField(40)],
    ['with junk after it', Buffer.concat([plaintextField(), Buffer.of(0xff, 0xff, 0xff)])],
    ['with a bad wire type after it', Buffer.concat([plaintextField(), Buffer.of(0x07), SECRET])],
    ['with a group tag after it', Buffer.concat([plaintextField(), Buffer.of(0x0b), SECRET])],
  ];
  for (const [what, bytes] of answers) {
    it(`${what}: Internal, not retried, with nothing of the answer's bytes`, async () => {
      answer = bytes;
      const { error, shown } = await failure(keys);
      expectNoSecret(shown);
      expect(error.code).toBe('Internal');
      expect(error.retryable).toBe(false);
    });
  }

  it("the service's own INTERNAL status is still Unavailable, retried", async () => {
    failWith = { code: 13, details: 'Internal error encountered.' };
    try {
      const { error } = await failure(keys);
      expect(error.code).toBe('Unavailable');
      expect(error.retryable).toBe(true);
    } finally {
      failWith = undefined;
    }
  });
});

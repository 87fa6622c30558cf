/**
 * Answers larger than any Cloud KMS sends, from a stand-in gRPC server (the test server sends
 * none): google-gax turns grpc-js's receive limit off, so without keyport's own limit one answer
 * could make the client buffer up to 4 GiB. An answer over the limit is refused from its length
 * prefix, as Internal and not retried (the same answer would come again).
 */
import { protos } from '@google-cloud/kms';
import { credentials, Server, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';
import { Keyport } from '@keyport/core';
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

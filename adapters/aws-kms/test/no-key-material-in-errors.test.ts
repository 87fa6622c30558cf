/**
 * A failed Encrypt, GenerateDataKey or Decrypt keeps no key material in its error. The SDK keeps
 * the request (its body: the plaintext) and the raw answer (`$response`, its body: a data key or a
 * plaintext) on the errors it throws; none of it, in any encoding, may be reachable from the
 * KeyportError. Failures come from the emulators (a disabled key, one pending deletion, a missing
 * one) and from a stand-in endpoint over real HTTP for what they never answer (throttling, a body
 * that is not JSON, a dropped connection, an answer too slow for the caller, a refusal quoting the
 * request, answers short of a field). The whole object graph of each error is walked.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DisableKeyCommand, ScheduleKeyDeletionCommand } from '@aws-sdk/client-kms';
import { findSecret } from '@keyport/conformance';
import { createKeyport, KeyportError } from '@keyport/core';
import { afterEach, describe, expect, it } from 'vitest';
import { AwsKmsProvider } from '../src/index.js';
import { keyMetadata } from './support/stub-transport.js';
import {
  providerFor,
  sdkClientFor,
  TARGET_NAMES,
  TEST_CREDENTIALS,
  target,
  uniqueName,
  utf8,
} from './support/targets.js';

const PLAINTEXT = utf8('keyport-secret-plaintext-0123456789-must-not-leak');
/** What a stand-in answers as a data key or a decrypted plaintext. */
const DATA_KEY = Buffer.from('0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff', 'hex');

const ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const ARN = `arn:aws:kms:us-east-1:111122223333:key/${ID}`;
const KEY = `aws-kms://${ARN}`;

async function failureOf(run: Promise<unknown>): Promise<KeyportError> {
  const error = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KeyportError);
  return error as KeyportError;
}

const leaks = (error: unknown, secrets: readonly Uint8Array[]) =>
  secrets.flatMap((s) => findSecret(error, s));

describe.each(TARGET_NAMES)('%s: a refused Encrypt', (name) => {
  it.each([
    [
      'of a disabled key',
      (c: ReturnType<typeof sdkClientFor>, id: string) => c.send(new DisableKeyCommand({ KeyId: id })),
    ],
    [
      'of a key pending deletion',
      (c: ReturnType<typeof sdkClientFor>, id: string) =>
        c.send(new ScheduleKeyDeletionCommand({ KeyId: id, PendingWindowInDays: 7 })),
    ],
  ])('%s keeps the plaintext out of the error', async (_, refuse) => {
    const t = target(name);
    const sdk = sdkClientFor(t);
    const keyport = createKeyport({ providers: [providerFor(t)], retry: { maxAttempts: 1 } });
    const { uri } = await keyport.createKey('aws-kms', { name: uniqueName('leak'), spec: 'AES_256' });
    const id = uri.slice(uri.lastIndexOf('/') + 1);
    await refuse(sdk, id);
    // moto encrypts under a disabled key: only a refusal is looked at.
    const error = await keyport.encrypt(uri, PLAINTEXT).then(
      () => undefined,
      (e: unknown) => e,
    );
    if (name === 'local-kms') expect(error).toBeDefined();
    if (error !== undefined) {
      expect(error).toBeInstanceOf(KeyportError);
      expect(leaks(error, [PLAINTEXT])).toEqual([]);
    }
    await keyport.close();
  });

  it('of a key that does not exist keeps the plaintext out of the error', async () => {
    const keyport = createKeyport({ providers: [providerFor(target(name))], retry: { maxAttempts: 1 } });
    const error = await failureOf(
      keyport.encrypt(`aws-kms://arn:aws:kms:us-east-1:${target(name).account}:key/${ID}`, PLAINTEXT),
    );
    expect(error.code).toBe('NotFound');
    expect(leaks(error, [PLAINTEXT])).toEqual([]);
    await keyport.close();
  });
});

const servers: ReturnType<typeof createServer>[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    s.close();
  }
});

/** A stand-in endpoint: DescribeKey answers a symmetric key; `op` is answered by `answer` (given the request's JSON). */
async function standIn(op: string, answer: (res: ServerResponse, body: Record<string, unknown>) => void) {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const target = String(req.headers['x-amz-target']).replace(/^TrentService\./, '');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (target !== op) {
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify(keyMetadata('SYMMETRIC_DEFAULT')));
      } else answer(res, JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const provider = new AwsKmsProvider({
    region: 'us-east-1',
    credentials: TEST_CREDENTIALS,
    endpoint: `http://127.0.0.1:${port}`,
  });
  return createKeyport({ providers: [provider], retry: { maxAttempts: 1 } });
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.1',
    'x-amzn-requestid': 'req-1',
    ...headers,
  });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
};

type Answer = (res: ServerResponse, body: Record<string, unknown>) => void;

const FAILING: Record<string, Answer> = {
  throttled: (res) => json(res, 400, { __type: 'ThrottlingException', message: 'Rate exceeded' }),
  'a 500 whose body is not JSON': (res) => {
    res.writeHead(500, { 'content-type': 'text/html' });
    res.end('<html>upstream failed</html>');
  },
  'a dropped connection': (res) => res.socket?.destroy(),
  'a 400 quoting the request': (res, body) =>
    json(res, 400, {
      __type: 'ValidationException',
      message: `1 validation error detected: Value '${Buffer.from(String(body.Plaintext), 'base64').toString('latin1')}' at 'plaintext' (${String(body.Plaintext)}) failed to satisfy constraint`,
    }),
  // A quote cut short, as parsers and proxies cut what they quote.
  'a 400 quoting a run of the request': (res, body) =>
    json(res, 400, {
      __type: 'ValidationException',
      message: `bad value ...${String(body.Plaintext).slice(8, 32)}...`,
    }),
  // The request id is the endpoint's to choose: one quoting the request must not become the error's.
  'a request id quoting the request': (res, body) =>
    json(
      res,
      400,
      { __type: 'ThrottlingException', message: 'Rate exceeded' },
      {
        'x-amzn-requestid': String(body.Plaintext),
      },
    ),
  'a 500 not JSON, its request id quoting a run of the request': (res, body) => {
    res.writeHead(500, {
      'content-type': 'text/html',
      'x-amzn-requestid': String(body.Plaintext).slice(8, 32),
    });
    res.end('<html>upstream failed</html>');
  },
};

/** What each failure still maps to once its text is withheld. */
const CODES: Record<string, string> = {
  throttled: 'Throttled',
  'a 500 whose body is not JSON': 'Unavailable',
  'a dropped connection': 'Unavailable',
  'a 400 quoting the request': 'InvalidArgument',
  'a 400 quoting a run of the request': 'InvalidArgument',
  'a request id quoting the request': 'Throttled',
  'a 500 not JSON, its request id quoting a run of the request': 'Unavailable',
};

describe('a failed Encrypt at a stand-in endpoint', () => {
  it('a refusal quoting the plaintext keeps its exception name, status and request id, not its text', async () => {
    const keyport = await standIn('Encrypt', FAILING['a 400 quoting the request'] as Answer);
    const error = await failureOf(keyport.encrypt(KEY, PLAINTEXT));
    expect(error).toMatchObject({ code: 'InvalidArgument', requestId: 'req-1', retryable: false });
    expect(error.message).toContain('ValidationException');
    expect(String((error.cause as Error).message)).toContain('withheld');
    await keyport.close();
  });

  it.each(Object.entries(FAILING))(
    '%s: the plaintext is not reachable from the error',
    async (what, answer) => {
      let sent: string | undefined;
      const keyport = await standIn('Encrypt', (res, body) => {
        sent = String(body.Plaintext);
        answer(res, body);
      });
      const error = await failureOf(keyport.encrypt(KEY, PLAINTEXT));
      expect(sent, 'the plaintext went in the request').toBe(Buffer.from(PLAINTEXT).toString('base64'));
      // Bytes 6 to 24 are what the run quoted (characters 8 to 32 of the base64).
      expect(leaks(error, [PLAINTEXT, PLAINTEXT.subarray(6, 24)])).toEqual([]);
      expect(error.code).toBe(CODES[what]);
      await keyport.close();
    },
  );

  it('aborted by the caller while the endpoint holds the answer: the plaintext is not reachable', async () => {
    const keyport = await standIn('Encrypt', () => undefined);
    const error = await failureOf(keyport.encrypt(KEY, PLAINTEXT, { signal: AbortSignal.timeout(100) }));
    expect(leaks(error, [PLAINTEXT])).toEqual([]);
    await keyport.close();
  });
});

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
/** Answers carrying DATA_KEY that keyport refuses. */
const REFUSED_ANSWERS: Record<string, Answer> = {
  'without a ciphertext': (res) => json(res, 200, { KeyId: ARN, Plaintext: b64(DATA_KEY) }),
  'naming another key': (res) =>
    json(res, 200, {
      KeyId: ARN.replace('1234abcd', 'ffffffff'),
      Plaintext: b64(DATA_KEY),
      CiphertextBlob: 'AAAA',
    }),
  'cut short': (res) =>
    json(res, 200, `{"KeyId":"${ARN}","Plaintext":"${b64(DATA_KEY)}","CiphertextBlob":"AA`),
  'with a data key of another length': (res) =>
    json(res, 200, { KeyId: ARN, Plaintext: b64(DATA_KEY.subarray(0, 24)), CiphertextBlob: 'AAAA' }),
};

describe.each([
  ['GenerateDataKey', Object.keys(REFUSED_ANSWERS)],
  // A plaintext of any length is an answer to Decrypt, and it needs no ciphertext.
  ['Decrypt', ['naming another key', 'cut short']],
] as const)('a %s answer keyport refuses', (op, cases) => {
  it.each(Object.entries(REFUSED_ANSWERS).filter(([what]) => (cases as readonly string[]).includes(what)))(
    '%s: the key material is not reachable from the error',
    async (_, answer) => {
      const keyport = await standIn(op, answer);
      const run =
        op === 'GenerateDataKey'
          ? keyport.generateDataKey(KEY, { bytes: 32 })
          : keyport.decrypt(KEY, new Uint8Array(64).fill(7));
      const error = await failureOf(run);
      expect(leaks(error, [DATA_KEY, DATA_KEY.subarray(0, 24)])).toEqual([]);
      await keyport.close();
    },
  );
});

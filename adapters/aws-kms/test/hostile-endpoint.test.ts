/**
 * Answers no emulator gives, from an endpoint that is broken or hostile (a proxy, a stand-in
 * server speaking the KMS JSON protocol):
 * - a body without end, or one declaring a size no KMS answer has, is cut off (`Internal`)
 *   instead of being read whole into memory
 * - a `Truncated` flag that is no boolean ends a listing `Internal`, never silently early
 * - a date that is no instant is left out, never handed on as an Invalid Date
 * - a data key shorter than asked is refused by the driver itself (no Keyport in front)
 * A real HTTP server where the transport matters (body sizes), the stubbed transport elsewhere.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { KMSClient } from '@aws-sdk/client-kms';
import { createKeyport, isKeyportError } from '@keyport/core';
import { afterEach, describe, expect, it } from 'vitest';
import { AwsKmsProvider } from '../src/index.js';
import { MAX_ANSWER_BYTES } from '../src/rpc.js';
import { keyMetadata, stubTransport } from './support/stub-transport.js';
import { call, TEST_CREDENTIALS } from './support/targets.js';

const ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const ARN = `arn:aws:kms:us-east-1:111122223333:key/${ID}`;
const KEY = `aws-kms://${ARN}`;
const META = keyMetadata('SYMMETRIC_DEFAULT');

/** The KeyportError code a call ends with (the driver throws SDK errors as they are). */
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'resolved',
    (e: unknown) => new AwsKmsProvider().mapError(e)?.code ?? String(e),
  );

const drain = async (listing: AsyncIterable<unknown>) => {
  for await (const _ of listing);
};

function stubbed(answer: Parameters<typeof stubTransport>[0]) {
  const stub = stubTransport(answer);
  const provider = new AwsKmsProvider({
    region: 'us-east-1',
    credentials: TEST_CREDENTIALS,
    clientConfig: stub.clientConfig,
  });
  return { provider, requests: stub.requests };
}

const servers: ReturnType<typeof createServer>[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    s.close();
  }
});

/** A stand-in KMS endpoint: DescribeKey answers a symmetric key, `answered` (Encrypt) as `encrypt` writes. */
async function standIn(encrypt: (res: ServerResponse) => void, answered = 'Encrypt') {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const op = String(req.headers['x-amz-target']).replace(/^TrentService\./, '');
    req.resume();
    req.on('end', () => {
      if (op !== answered) {
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify(META));
      } else encrypt(res);
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
  return { provider, keyport: createKeyport({ providers: [provider] }) };
}

const HEAD = `{"KeyId":"${ARN}","CiphertextBlob":"`;

describe('an answer larger than any KMS answer', () => {
  it('is cut off once past the bound when it declares no length (chunked), the connection closed', async () => {
    let sent = 0;
    let closed = false;
    const chunk = Buffer.alloc(1024 * 1024, 'A');
    const { keyport } = await standIn((res) => {
      res.on('close', () => {
        closed = true;
      });
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      res.write(HEAD);
      // 40 MiB of "ciphertext", then a well-formed end: read whole, it was a 30 MB ciphertext
      const pump = (): void => {
        while (sent < 40 * 1024 * 1024) {
          if (res.destroyed) return;
          sent += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end('"}');
      };
      pump();
    });
    const error = await keyport.encrypt(KEY, new Uint8Array(4), { timeoutMs: 20_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isKeyportError(error, 'Internal'), String(error)).toBe(true);
    expect((error as Error).message).toContain('16 MiB');
    await expect.poll(() => closed).toBe(true);
    expect(sent).toBeLessThan(40 * 1024 * 1024);
  });

  it('is refused before its body is read when it declares a length over the bound', async () => {
    const { keyport } = await standIn((res) => {
      res.writeHead(200, {
        'content-type': 'application/x-amz-json-1.1',
        'content-length': String(1024 * 1024 * 1024),
      });
      res.write(HEAD); // and then nothing: read to its end, the call would wait out its deadline
    });
    const started = Date.now();
    const error = await keyport.encrypt(KEY, new Uint8Array(4), { timeoutMs: 5000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isKeyportError(error, 'Internal'), String(error)).toBe(true);
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('takes an answer within the bound, declared or chunked', async () => {
    const ciphertext = Buffer.alloc(3000, 7);
    const body = `${HEAD}${ciphertext.toString('base64')}"}`;
    for (const chunked of [false, true]) {
      const { keyport } = await standIn((res) => {
        res.writeHead(200, {
          'content-type': 'application/x-amz-json-1.1',
          ...(chunked ? {} : { 'content-length': String(Buffer.byteLength(body)) }),
        });
        if (!chunked) res.end(body);
        else {
          // in pieces, so the counted path joins several chunks
          res.write(body.slice(0, 100));
          res.write(body.slice(100, 2000));
          res.end(body.slice(2000));
        }
      });
      const out = await keyport.encrypt(KEY, new Uint8Array(4));
      expect(Buffer.from(out.ciphertext).equals(ciphertext), `chunked: ${chunked}`).toBe(true);
    }
  });

  it('bounds answers the transport hands over whole as well (a custom requestHandler)', async () => {
    const big = 'A'.repeat(MAX_ANSWER_BYTES);
    const { provider } = stubbed((op) =>
      op === 'Encrypt' ? { json: { KeyId: ARN, CiphertextBlob: big } } : { json: META },
    );
    expect(await codeOf(provider.encrypt({ uri: KEY }, new Uint8Array(4), {}, call()))).toBe('Internal');
  });

  it('bounds the answers of a client the caller passed, without changing that client', async () => {
    const big = 'A'.repeat(MAX_ANSWER_BYTES);
    const stub = stubTransport((op) =>
      op === 'Encrypt' ? { json: { KeyId: ARN, CiphertextBlob: big } } : { json: META },
    );
    const client = new KMSClient({
      region: 'us-east-1',
      credentials: TEST_CREDENTIALS,
      maxAttempts: 1,
      ...stub.clientConfig,
    });
    const before = client.middlewareStack.identify();
    const provider = new AwsKmsProvider({ client });
    expect(await codeOf(provider.encrypt({ uri: KEY }, new Uint8Array(4), {}, call()))).toBe('Internal');
    expect(client.middlewareStack.identify()).toEqual(before);
  });
});

describe('a page whose Truncated flag is no boolean', () => {
  it('ends the listing Internal instead of as if it were the last page', async () => {
    for (const Truncated of ['true', 1, 'false']) {
      const { provider, requests } = stubbed((op) => {
        if (op === 'DescribeKey') return { json: META };
        if (op === 'GetKeyRotationStatus') return { json: { KeyRotationEnabled: false } };
        const page = { Truncated, NextMarker: 'next' };
        if (op === 'ListKeys') return { json: { Keys: [{ KeyId: ID, KeyArn: ARN }], ...page } };
        if (op === 'ListGrants') return { json: { Grants: [], ...page } };
        if (op === 'ListResourceTags') return { json: { Tags: [{ TagKey: 't', TagValue: 'v' }], ...page } };
        return { json: {} };
      });
      const what = JSON.stringify(Truncated);
      expect(await codeOf(drain(provider.listKeys(call()))), what).toBe('Internal');
      expect(await codeOf(drain(provider.listGrants({ uri: KEY }, call()))), what).toBe('Internal');
      expect(await codeOf(provider.describeKey({ uri: KEY }, call())), what).toBe('Internal');
      expect(requests.some((r) => r.body.Marker !== undefined)).toBe(false);
    }
  });
});

describe('a date that is no instant (an epoch of 1e20 seconds reads as Invalid Date)', () => {
  const GARBAGE = 1e20;

  it('is left out of key infos, grants and import parameters; valid dates stay', async () => {
    const { provider } = stubbed((op) => {
      switch (op) {
        case 'DescribeKey':
          return {
            json: {
              KeyMetadata: {
                ...META.KeyMetadata,
                KeyState: 'PendingDeletion',
                Enabled: false,
                CreationDate: GARBAGE,
                DeletionDate: GARBAGE,
              },
            },
          };
        case 'ListGrants':
          return {
            json: {
              Grants: [
                {
                  KeyId: ARN,
                  GrantId: 'g-1',
                  GranteePrincipal: 'p',
                  Operations: ['Decrypt'],
                  CreationDate: GARBAGE,
                },
                {
                  KeyId: ARN,
                  GrantId: 'g-2',
                  GranteePrincipal: 'p',
                  Operations: ['Decrypt'],
                  CreationDate: 1.7e9,
                },
              ],
            },
          };
        case 'GetParametersForImport':
          return { json: { KeyId: ARN, ImportToken: 'AAEC', PublicKey: 'AAEC', ParametersValidTo: GARBAGE } };
        default:
          return { json: {} };
      }
    });
    const info = await provider.describeKey({ uri: KEY }, call());
    expect(info.state).toBe('pending_deletion');
    expect('createdAt' in info).toBe(false);
    expect('deletionDate' in info).toBe(false);
    const grants: { createdAt?: Date }[] = [];
    for await (const g of provider.listGrants({ uri: KEY }, call())) grants.push(g);
    expect('createdAt' in (grants[0] as object)).toBe(false);
    expect(grants[1]?.createdAt?.getTime()).toBe(1.7e12);
    const params = await provider.getImportParameters({ uri: KEY }, {}, call());
    expect('expiresAt' in params).toBe(false);
  });
});

describe('a data key of another length than asked', () => {
  it('is refused by the driver called directly (Internal), not handed over as a weaker key', async () => {
    for (const Plaintext of ['AA==', Buffer.alloc(64).toString('base64')]) {
      const { provider } = stubbed((op) =>
        op === 'GenerateDataKey'
          ? { json: { CiphertextBlob: 'AAEC', Plaintext, KeyId: ARN } }
          : { json: META },
      );
      expect(await codeOf(provider.generateDataKey({ uri: KEY }, { bytes: 32 }, call()))).toBe('Internal');
    }
    const { provider } = stubbed((op) =>
      op === 'GenerateDataKey'
        ? { json: { CiphertextBlob: 'AAEC', Plaintext: Buffer.alloc(32, 1).toString('base64'), KeyId: ARN } }
        : { json: META },
    );
    expect((await provider.generateDataKey({ uri: KEY }, { bytes: 32 }, call())).plaintext).toHaveLength(32);
  });
});

describe('a blob field that is not base64 bytes', () => {
  // The SDK decodes a base64 string and passes any other JSON value through as it is.
  const SHAPES: Record<string, unknown> = {
    'an array': [1, 2, 3],
    'an array of 32 numbers': Array.from({ length: 32 }, () => 7),
    'an object': { 0: 1, length: 1 },
    'a number': 12345,
    'a boolean': true,
    'an empty string': '',
    'base64 with whitespace': 'AAAA AAAA\nAAAA',
    'base64 with invalid characters': 'AA!A$$AA',
  };
  const DATA_KEY = Buffer.alloc(32, 7).toString('base64');

  it('is refused (Internal) by encrypt, decrypt, the data-key calls, sign, mac and getPublicKey, never handed over', async () => {
    const outcomes: Record<string, string> = {};
    for (const [shape, value] of Object.entries(SHAPES)) {
      for (const [op, field, run] of [
        [
          'Encrypt',
          'CiphertextBlob',
          (p: AwsKmsProvider) => p.encrypt({ uri: KEY }, new Uint8Array([1]), {}, call()),
        ],
        [
          'Decrypt',
          'Plaintext',
          (p: AwsKmsProvider) => p.decrypt({ uri: KEY }, new Uint8Array([1]), {}, call()),
        ],
        ['GenerateDataKey', 'Plaintext', (p: AwsKmsProvider) => p.generateDataKey({ uri: KEY }, {}, call())],
        [
          'GenerateDataKey',
          'CiphertextBlob',
          (p: AwsKmsProvider) => p.generateDataKey({ uri: KEY }, {}, call()),
        ],
        [
          'GenerateDataKeyWithoutPlaintext',
          'CiphertextBlob',
          (p: AwsKmsProvider) => p.generateDataKeyWithoutPlaintext({ uri: KEY }, {}),
        ],
        [
          'ReEncrypt',
          'CiphertextBlob',
          (p: AwsKmsProvider) =>
            p.reEncrypt({ uri: KEY }, new Uint8Array([1]), { destination: { uri: KEY } }),
        ],
        [
          'Sign',
          'Signature',
          (p: AwsKmsProvider) =>
            p.sign({ uri: KEY }, new Uint8Array([1]), { algorithm: 'ECDSA_SHA_256' }, call()),
        ],
        ['GenerateMac', 'Mac', (p: AwsKmsProvider) => p.mac({ uri: KEY }, new Uint8Array([1]), call())],
        ['GetPublicKey', 'PublicKey', (p: AwsKmsProvider) => p.getPublicKey({ uri: KEY }, call())],
      ] as const) {
        const { provider } = stubbed((asked) => {
          if (asked !== op) return { json: META };
          const answer: Record<string, unknown> = {
            CiphertextBlob: 'AAEC',
            Plaintext: DATA_KEY,
            KeyId: ARN,
            SourceKeyId: ARN,
            [field]: value,
          };
          return { json: answer };
        });
        outcomes[`${op}.${field} as ${shape}`] = await codeOf(run(provider));
      }
    }
    expect(outcomes).toEqual(Object.fromEntries(Object.keys(outcomes).map((k) => [k, 'Internal'])));
  });
});

describe('an answer to a call returning key material whose body is not JSON', () => {
  // 32 known key bytes; every 8-character run of their base64 and hex is looked for
  const RAW = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 7 + 1) & 255));
  const B64 = RAW.toString('base64');
  const HEX = RAW.toString('hex');
  const runs = (s: string) => Array.from({ length: s.length - 7 }, (_, i) => s.slice(i, i + 8));
  const BODIES = {
    'an unquoted plaintext': `{"KeyId":"${ARN}","Plaintext":${B64}}`,
    'a bare base64 body': B64,
    'a body shorter than 21 characters (quoted whole)': B64.slice(0, 20),
    'a body cut short': `{"KeyId":"${ARN}","Plaintext":"${B64}"`,
    'raw key bytes': RAW.toString('latin1'),
  };

  it('keeps no part of the body in the error or its cause chain (status, request id and code kept)', async () => {
    for (const [what, body] of Object.entries(BODIES))
      for (const op of ['Decrypt', 'GenerateDataKey'] as const)
        for (const status of [200, 400]) {
          const { keyport } = await standIn((res) => {
            res.writeHead(status, {
              'content-type': 'application/x-amz-json-1.1',
              'x-amzn-requestid': 'rid-7',
            });
            res.end(Buffer.from(body, 'latin1'));
          }, op);
          const error = await (op === 'Decrypt'
            ? keyport.decrypt(KEY, new Uint8Array(8))
            : keyport.generateDataKey(KEY, { bytes: 32 })
          ).then(
            () => undefined,
            (e: unknown) => e,
          );
          const label = `${what}, ${op}, HTTP ${status}`;
          expect(isKeyportError(error), label).toBe(true);
          if (!isKeyportError(error)) continue;
          expect(error.code, label).toBe('Internal');
          expect(error.requestId, label).toBe('rid-7');
          const printed = [
            inspect(error, { depth: 10, showHidden: true }),
            JSON.stringify(error),
            String(error.stack),
            String((error.cause as Error | undefined)?.stack),
          ].join('\n');
          expect(printed, label).not.toMatch(/is not valid JSON/);
          for (const run of [...runs(B64), ...runs(HEX)])
            expect(printed, `${label}: ${run}`).not.toContain(run);
          // raw bytes as V8 quotes them (escaped by core): 1, 8, 15, 22 ...
          expect(printed, label).not.toContain(String.raw`\u0001\u0008\u000f`);
          expect(error.message, label).toBe(
            `AWS KMS answered HTTP ${status} with a body that is not KMS JSON`,
          );
        }
  });
});

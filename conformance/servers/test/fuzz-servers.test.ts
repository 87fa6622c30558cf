import { readFileSync } from 'node:fs';
import { type ClientHttp2Session, connect } from 'node:http2';
import { request } from 'node:https';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AzureKeyVaultServer, startAzureKeyVaultServer } from '../src/azure/index.js';
import { type CloudKmsServer, startCloudKmsServer } from '../src/gcp/index.js';
import { kmsRoot, loadKmsDefinitions } from '../src/gcp/proto.js';
import { ADMIN, PRINCIPALS } from './azure-helpers.js';
import { makeClient } from './gcp-support.js';

// The decoders of both servers under random and mutated client bytes: whatever a client sends,
// the answer is a status the service could give, never INTERNAL (gRPC 13, or 2 UNKNOWN) and never
// HTTP 500. Run count: KEYPORT_FUZZ_RUNS (small in CI; `pnpm fuzz` runs any size).
const RUNS = Number(process.env.KEYPORT_FUZZ_RUNS ?? 40);
const LOC = 'projects/fuzz/locations/global';
const RING = `${LOC}/keyRings/ring`;

let kms: CloudKmsServer;
let vault: AzureKeyVaultServer;
let h2: ClientHttp2Session;
beforeAll(async () => {
  [kms, vault] = await Promise.all([
    startCloudKmsServer(),
    startAzureKeyVaultServer({ principals: PRINCIPALS }),
  ]);
  const client = makeClient(kms.port);
  await client.createKeyRing({ parent: LOC, keyRingId: 'ring', keyRing: {} });
  await client.createCryptoKey({
    parent: RING,
    cryptoKeyId: 'sym',
    cryptoKey: { purpose: 'ENCRYPT_DECRYPT' },
  });
  await client.createCryptoKey({
    parent: RING,
    cryptoKeyId: 'ec',
    cryptoKey: { purpose: 'ASYMMETRIC_SIGN', versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256' } },
  });
  await client.createCryptoKey({
    parent: RING,
    cryptoKeyId: 'mac',
    cryptoKey: { purpose: 'MAC', versionTemplate: { algorithm: 'HMAC_SHA256' } },
  });
  await client.close();
  h2 = connect(`http://${kms.address}`);
}, 60_000);
afterAll(async () => {
  h2?.close();
  await Promise.all([kms?.stop(), vault?.stop()]);
});

/** One raw gRPC call; resolves the grpc-status it ended with. */
function grpcCall(path: string, payload: Uint8Array): Promise<number> {
  return new Promise((resolve, reject) => {
    const stream = h2.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    let done = false;
    const finish = (s: unknown) => {
      if (!done) {
        done = true;
        resolve(Number(s));
      }
    };
    stream.on('response', (hdrs) => {
      if (hdrs['grpc-status'] !== undefined) finish(hdrs['grpc-status']);
    });
    stream.on('trailers', (t) => finish(t['grpc-status']));
    stream.on('error', reject);
    stream.resume();
    const frame = Buffer.alloc(5 + payload.length);
    frame.writeUInt32BE(payload.length, 1);
    Buffer.from(payload).copy(frame, 5);
    stream.end(frame);
  });
}

// Valid requests of every shape the handlers read deeply, to mutate.
const TEMPLATES: Array<{ method: string; type: string; value: object }> = [
  {
    method: 'Encrypt',
    type: 'EncryptRequest',
    value: {
      name: `${RING}/cryptoKeys/sym`,
      plaintext: Buffer.from('x'),
      additionalAuthenticatedData: Buffer.from('a'),
    },
  },
  {
    method: 'Decrypt',
    type: 'DecryptRequest',
    value: { name: `${RING}/cryptoKeys/sym`, ciphertext: Buffer.alloc(40, 1) },
  },
  {
    method: 'CreateCryptoKey',
    type: 'CreateCryptoKeyRequest',
    value: {
      parent: RING,
      cryptoKeyId: 'new',
      cryptoKey: {
        purpose: 1,
        labels: { a: 'b' },
        rotationPeriod: { seconds: 90000 },
        nextRotationTime: { seconds: 4e9 },
      },
    },
  },
  {
    method: 'ListCryptoKeys',
    type: 'ListCryptoKeysRequest',
    value: {
      parent: RING,
      pageSize: 2,
      filter: 'labels.a=b OR (name:x AND -purpose=MAC)',
      orderBy: 'name desc',
    },
  },
  {
    method: 'AsymmetricSign',
    type: 'AsymmetricSignRequest',
    value: { name: `${RING}/cryptoKeys/ec/cryptoKeyVersions/1`, digest: { sha256: Buffer.alloc(32, 7) } },
  },
  {
    method: 'MacSign',
    type: 'MacSignRequest',
    value: { name: `${RING}/cryptoKeys/mac/cryptoKeyVersions/1`, data: Buffer.from('d') },
  },
  {
    method: 'UpdateCryptoKey',
    type: 'UpdateCryptoKeyRequest',
    value: {
      cryptoKey: { name: `${RING}/cryptoKeys/sym`, labels: { k: 'v' } },
      updateMask: { paths: ['labels'] },
    },
  },
  {
    method: 'CreateImportJob',
    type: 'CreateImportJobRequest',
    value: { parent: RING, importJobId: 'job', importJob: { importMethod: 1, protectionLevel: 1 } },
  },
  {
    method: 'GenerateRandomBytes',
    type: 'GenerateRandomBytesRequest',
    value: { location: LOC, lengthBytes: 16, protectionLevel: 2 },
  },
];
const encoded = TEMPLATES.map((t) => {
  const type = kmsRoot().lookupType(`google.cloud.kms.v1.${t.type}`);
  return {
    path: `/google.cloud.kms.v1.KeyManagementService/${t.method}`,
    bytes: type.encode(type.fromObject(t.value)).finish(),
  };
});

const mutate = (bytes: Uint8Array, edits: Array<[number, number]>, cut: number) => {
  const out = Buffer.from(bytes);
  for (const [at, value] of edits) out[at % Math.max(out.length, 1)] = value;
  return out.subarray(0, Math.max(0, out.length - cut));
};

describe('Cloud KMS gRPC decoder fuzz', () => {
  const methods = Object.keys(loadKmsDefinitions().kms);

  it('random bytes to any method: never INTERNAL or UNKNOWN', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...methods),
        fc.uint8Array({ maxLength: 300 }),
        async (method, payload) => {
          const code = await grpcCall(`/google.cloud.kms.v1.KeyManagementService/${method}`, payload);
          expect([2, 13], `${method} answered ${code}`).not.toContain(code);
        },
      ),
      { numRuns: RUNS },
    );
  }, 120_000);

  it('mutated valid requests: never INTERNAL or UNKNOWN', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...encoded),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        fc.nat({ max: 4 }),
        async (t, edits, cut) => {
          const code = await grpcCall(t.path, mutate(t.bytes, edits, cut));
          expect([2, 13], `${t.path} answered ${code}`).not.toContain(code);
        },
      ),
      { numRuns: RUNS * 2 },
    );
  }, 120_000);
});

describe('Cloud KMS REST decoder fuzz', () => {
  const paths = [
    `/v1/${RING}/cryptoKeys/sym:encrypt`,
    `/v1/${RING}/cryptoKeys/sym:decrypt`,
    `/v1/${RING}/cryptoKeys?cryptoKeyId=f`,
    `/v1/${RING}/cryptoKeys/ec/cryptoKeyVersions/1:asymmetricSign`,
    `/v1/${LOC}:generateRandomBytes`,
    `/v1/${RING}/cryptoKeys/sym:setIamPolicy`,
  ];
  const json = fc.jsonValue({ maxDepth: 4 });
  const field = fc.constantFrom(
    'plaintext',
    'ciphertext',
    'purpose',
    'labels',
    'digest',
    'lengthBytes',
    'policy',
    'versionTemplate',
    'additional_authenticated_data',
    '__proto__',
    'constructor',
  );

  it('random JSON and bytes to REST routes, and random filters: never 500', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...paths),
        fc.oneof(
          fc.dictionary(field, json).map((o) => JSON.stringify(o)),
          fc.string({ maxLength: 200 }),
          fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
        ),
        fc.string({ maxLength: 80 }),
        fc.array(
          fc.tuple(
            fc.constantFrom(
              'pageSize',
              'page_size',
              'pageToken',
              'view',
              'versionView',
              'options.requestedPolicyVersion',
              'a.b.c',
              '$alt',
              'x',
            ),
            fc.string({ maxLength: 20 }),
          ),
          { maxLength: 4 },
        ),
        async (path, body, filter, params) => {
          const res = await fetch(`${kms.restUrl}${path}`, { method: 'POST', body });
          expect(res.status, `${path} ${body}`).not.toBe(500);
          const list = await fetch(
            `${kms.restUrl}/v1/${RING}/cryptoKeys?filter=${encodeURIComponent(filter)}&orderBy=${encodeURIComponent(filter)}`,
          );
          expect(list.status, filter).not.toBe(500);
          const query = params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
          const versions = await fetch(`${kms.restUrl}/v1/${RING}/cryptoKeys/sym/cryptoKeyVersions?${query}`);
          expect(versions.status, query).not.toBe(500);
        },
      ),
      { numRuns: RUNS },
    );
  }, 120_000);
});

describe('Key Vault decoder fuzz', () => {
  const ca = () => readFileSync(vault.caFile);
  const call = (method: string, path: string, body: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = request(
        `${vault.url}${path}`,
        {
          method,
          ca: ca(),
          headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const routes: Array<[string, string]> = [
    ['POST', '/keys/fz/create'],
    ['PUT', '/keys/fz-import'],
    ['PATCH', '/keys/fz'],
    ['PUT', '/keys/fz/rotationpolicy'],
    ['POST', '/keys/fz//encrypt'],
    ['POST', '/keys/fz//sign'],
    ['POST', '/keys/fz//unwrapkey'],
    ['POST', '/keys/restore'],
    ['POST', '/rng'],
  ];
  const field = fc.constantFrom(
    'kty',
    'key_size',
    'crv',
    'key_ops',
    'attributes',
    'tags',
    'alg',
    'value',
    'key',
    'lifetimeActions',
    'count',
    '__proto__',
    'exp',
    'nbf',
  );

  it('random and mutated bodies on every route: never 500', async () => {
    expect(await call('POST', '/keys/fz/create?api-version=7.6', '{"kty":"RSA"}')).toBe(200);
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        fc.constantFrom('7.6', '2026-01-01-preview', '2025-07-01', 'x'),
        fc.oneof(
          fc.dictionary(field, fc.jsonValue({ maxDepth: 3 })).map((o) => JSON.stringify(o)),
          fc.string({ maxLength: 200 }),
          fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
        ),
        async ([method, path], version, body) => {
          const status = await call(method, `${path}?api-version=${version}`, body);
          expect(status, `${method} ${path} ${body}`).not.toBe(500);
        },
      ),
      { numRuns: RUNS * 2 },
    );
  }, 120_000);
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CloudKmsServer, startCloudKmsServer } from '../src/gcp/index.js';

// proto3 JSON values over REST beyond enums and integers (https://protobuf.dev/programming-guides/json/):
// null is the default value of any field (the field is left unset), a bool is true or false, and a
// message field holds a JSON object. Google's transcoder words a wrong value "Invalid value at
// '<field path>' (<type>), <value>".
const LOC = 'projects/keyport-rest-json/locations/global';
const RING = `${LOC}/keyRings/values`;

let server: CloudKmsServer;
beforeAll(async () => {
  server = await startCloudKmsServer();
  expect((await post(`/v1/${LOC}/keyRings?keyRingId=values`, {})).status).toBe(200);
});
afterAll(async () => {
  await server?.stop();
});

const post = (path: string, body: unknown) =>
  fetch(`${server.restUrl}${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });

async function expectRefused(res: Response, message: string): Promise<void> {
  expect(res.status).toBe(400);
  const body = (await res.json()) as { error: { message: string; status: string } };
  expect(body.error).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT', message });
}

describe('null is the default value', () => {
  it('of bool, message, map, Duration and Timestamp fields of a new key', async () => {
    const res = await post(`/v1/${RING}/cryptoKeys?cryptoKeyId=nulls`, {
      purpose: 'ENCRYPT_DECRYPT',
      importOnly: null,
      versionTemplate: null,
      labels: null,
      rotationPeriod: null,
      nextRotationTime: null,
    });
    expect(res.status).toBe(200);
    const key = (await res.json()) as Record<string, unknown>;
    expect(key.importOnly ?? false).toBe(false);
    expect(key.rotationPeriod).toBeUndefined();
    expect(key.versionTemplate).toMatchObject({ algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION' });
  });

  it('of bytes and Int64Value fields of an Encrypt', async () => {
    const res = await post(`/v1/${RING}/cryptoKeys/nulls:encrypt`, {
      plaintext: Buffer.from('hi').toString('base64'),
      additionalAuthenticatedData: null,
      plaintextCrc32c: null,
    });
    expect(res.status).toBe(200);
    const out = (await res.json()) as { verifiedPlaintextCrc32c: boolean; ciphertext: string };
    expect(out.verifiedPlaintextCrc32c).toBe(false);
    const back = await post(`/v1/${RING}/cryptoKeys/nulls:decrypt`, { ciphertext: out.ciphertext });
    expect(back.status).toBe(200);
    expect(((await back.json()) as { plaintext: string }).plaintext).toBe(
      Buffer.from('hi').toString('base64'),
    );
  });
});

describe('a bool is true or false', () => {
  for (const [value, shown] of [
    [1, '1'],
    ['true', '"true"'],
    [{}, '{}'],
  ] as const) {
    it(`refuses ${JSON.stringify(value)} worded as the service words it`, async () => {
      await expectRefused(
        await post(`/v1/${RING}/cryptoKeys?cryptoKeyId=b`, { purpose: 'ENCRYPT_DECRYPT', importOnly: value }),
        `Invalid value at 'crypto_key.import_only' (TYPE_BOOL), ${shown}`,
      );
    });
  }
});

describe('a message field holds an object', () => {
  const TEMPLATE = 'type.googleapis.com/google.cloud.kms.v1.CryptoKeyVersionTemplate';
  for (const [value, shown] of [
    [5, '5'],
    ['x', '"x"'],
    [true, 'true'],
  ] as const) {
    it(`refuses ${JSON.stringify(value)} instead of creating the key with the default template`, async () => {
      const id = `m-${typeof value}`;
      const res = await post(`/v1/${RING}/cryptoKeys?cryptoKeyId=${id}`, {
        purpose: 'ENCRYPT_DECRYPT',
        versionTemplate: value,
      });
      const message = `Invalid value at 'crypto_key.version_template' (${TEMPLATE}), ${shown}`;
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({
        error: {
          code: 400,
          message,
          status: 'INVALID_ARGUMENT',
          details: [
            {
              '@type': 'type.googleapis.com/google.rpc.BadRequest',
              fieldViolations: [{ field: 'crypto_key.version_template', description: message }],
            },
          ],
        },
      });
      const get = await fetch(`${server.restUrl}/v1/${RING}/cryptoKeys/${id}`);
      expect(get.status).toBe(404);
    });
  }

  it('refuses a list where one message belongs', async () => {
    await expectRefused(
      await post(`/v1/${RING}/cryptoKeys?cryptoKeyId=list`, {
        purpose: 'ENCRYPT_DECRYPT',
        versionTemplate: [{}],
      }),
      'Invalid JSON payload received. Proto field is not repeating, cannot start list.',
    );
  });
});

import { KeyManagementServiceClient } from '@google-cloud/kms';
import { OAuth2Client } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CloudKmsServer, startCloudKmsServer } from '../src/gcp/index.js';

// 32-bit integer fields over REST (page_size in a query, length_bytes in a body): proto3 JSON
// takes a number or a string holding one, integral and in range; the service refuses anything
// else with "Invalid value at '<field>' (TYPE_INT32), <value>". The server used to hand them to
// the decoder, which read "abc" as 0 (a default page), cut 2.5 to 2 and wrapped 4294967304 to 8
// (eight random bytes for a request the service refuses).
const RING = 'projects/keyport-ints/locations/global/keyRings/ints';

let server: CloudKmsServer;
let kms: KeyManagementServiceClient;
beforeAll(async () => {
  server = await startCloudKmsServer();
  const url = new URL(server.restUrl!);
  const authClient = new OAuth2Client();
  authClient.setCredentials({ access_token: 'keyport-test-token', expiry_date: Date.now() + 3_600_000 });
  kms = new KeyManagementServiceClient({
    fallback: true,
    protocol: 'http',
    apiEndpoint: url.hostname,
    port: Number(url.port),
    authClient,
  });
  await kms.createKeyRing({
    parent: 'projects/keyport-ints/locations/global',
    keyRingId: 'ints',
    keyRing: {},
  });
  for (const id of ['a', 'b', 'c']) {
    await kms.createCryptoKey({ parent: RING, cryptoKeyId: id, cryptoKey: { purpose: 'ENCRYPT_DECRYPT' } });
  }
});
afterAll(async () => {
  await kms?.close();
  await server?.stop();
});

async function answer(path: string, init: RequestInit = {}): Promise<{ status: number; message: string }> {
  const res = await fetch(`${server.restUrl}${path}`, init);
  const body = (await res.json()) as { error?: { message?: string; status?: string } };
  if (res.status !== 200) expect(body.error?.status).toBe('INVALID_ARGUMENT');
  return { status: res.status, message: body.error?.message ?? '' };
}

describe('Cloud KMS over REST: 32-bit integer fields', () => {
  it('the official client still pages with page_size', async () => {
    const [keys, , response] = await kms.listCryptoKeys(
      { parent: RING, pageSize: 2 },
      { autoPaginate: false },
    );
    expect(keys.map((k) => k.name?.split('/').pop())).toEqual(['a', 'b']);
    expect(response?.nextPageToken).toBeTruthy();
  });

  it('a page_size query parameter that is not an int32 is 400, not a default page', async () => {
    for (const value of ['1', '1e0', '1.0']) {
      const res = await fetch(`${server.restUrl}/v1/${RING}/cryptoKeys?pageSize=${value}`);
      expect(res.status, value).toBe(200);
      expect(((await res.json()) as { cryptoKeys: unknown[] }).cryptoKeys).toHaveLength(1);
    }
    for (const value of ['abc', '2.5', '0x1', '%201', 'NaN', 'Infinity', '2147483648', '4294967297']) {
      const got = await answer(`/v1/${RING}/cryptoKeys?pageSize=${value}`);
      expect(got.status, value).toBe(400);
      expect(got.message).toBe(
        `Invalid value at 'page_size' (TYPE_INT32), ${JSON.stringify(decodeURIComponent(value))}`,
      );
    }
  });

  it('a length_bytes body value that is not an int32 is 400, not wrapped or truncated', async () => {
    const random = (lengthBytes: string) =>
      answer('/v1/projects/keyport-ints/locations/global:generateRandomBytes', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: `{"lengthBytes":${lengthBytes},"protectionLevel":"HSM"}`,
      });
    expect((await random('16')).status).toBe(200);
    expect((await random('"16"')).status).toBe(200);
    expect(await random('4294967304')).toEqual({
      status: 400,
      message: "Invalid value at 'length_bytes' (TYPE_INT32), 4294967304",
    });
    expect(await random('8.5')).toEqual({
      status: 400,
      message: "Invalid value at 'length_bytes' (TYPE_INT32), 8.5",
    });
    expect(await random('"abc"')).toEqual({
      status: 400,
      message: `Invalid value at 'length_bytes' (TYPE_INT32), "abc"`,
    });
  });
});

import { KeyManagementServiceClient } from '@google-cloud/kms';
import { OAuth2Client } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CloudKmsServer, startCloudKmsServer } from '../src/gcp/index.js';

// Over REST, what the path (and the body field) binds is not a query parameter (google.api.http
// HttpRule: the fields "not bound by the path template" become query parameters), and proto3 JSON
// string fields, map<string, string> values included, take JSON strings only.
const LOC = 'projects/keyport-bindings/locations/global';
const OTHER = 'projects/keyport-elsewhere/locations/global';

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
  await kms.createKeyRing({ parent: LOC, keyRingId: 'bound', keyRing: {} });
});
afterAll(async () => {
  await kms?.close();
  await server?.stop();
});

const rest = (path: string, init: RequestInit = {}) => fetch(`${server.restUrl}${path}`, init);
const post = (path: string, body: unknown) =>
  rest(path, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

describe('REST: a query parameter never replaces what the path or the body binds', () => {
  it('?parent= on a create is ignored: the key ring is made under the path', async () => {
    const res = await post(`/v1/${LOC}/keyRings?keyRingId=q-parent&parent=${encodeURIComponent(OTHER)}`, {});
    expect(res.status).toBe(200);
    expect(((await res.json()) as { name: string }).name).toBe(`${LOC}/keyRings/q-parent`);
    const [here] = await kms.getKeyRing({ name: `${LOC}/keyRings/q-parent` });
    expect(here.name).toBe(`${LOC}/keyRings/q-parent`);
    const [elsewhere] = await kms.listKeyRings({ parent: OTHER });
    expect(elsewhere).toEqual([]);
  });

  it('?name= on a get, a list or a custom verb is ignored', async () => {
    const ring = `${LOC}/keyRings/bound`;
    const got = await rest(`/v1/${ring}?name=${encodeURIComponent(`${LOC}/keyRings/missing`)}`);
    expect(got.status).toBe(200);
    expect(((await got.json()) as { name: string }).name).toBe(ring);
    const [key] = await kms.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'enc',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT' },
    });
    const enc = await post(`/v1/${key.name}:encrypt?name=${encodeURIComponent(`${ring}/cryptoKeys/nope`)}`, {
      plaintext: Buffer.from('hi').toString('base64'),
    });
    expect(enc.status).toBe(200);
    expect(((await enc.json()) as { name: string }).name).toBe(`${key.name}/cryptoKeyVersions/1`);
    const listed = await rest(`/v1/${ring}/cryptoKeys?parent=${encodeURIComponent(`${OTHER}/keyRings/x`)}`);
    expect(listed.status).toBe(200);
    expect(
      ((await listed.json()) as { cryptoKeys: { name: string }[] }).cryptoKeys.map((k) => k.name),
    ).toEqual([key.name]);
  });

  it('?cryptoKey.purpose= does not replace the body field of CreateCryptoKey', async () => {
    const res = await post(
      `/v1/${LOC}/keyRings/bound/cryptoKeys?cryptoKeyId=from-body&cryptoKey.purpose=MAC`,
      { purpose: 'ENCRYPT_DECRYPT' },
    );
    expect(res.status).toBe(200);
    expect(((await res.json()) as { purpose: string }).purpose).toBe('ENCRYPT_DECRYPT');
  });

  it('the other query parameters still apply', async () => {
    const res = await rest(`/v1/${LOC}/keyRings?pageSize=1&parent=${encodeURIComponent(OTHER)}`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { keyRings: unknown[]; nextPageToken: string };
    expect(body.keyRings).toHaveLength(1);
    expect(body.nextPageToken).not.toBe('');
  });
});

describe('REST: string fields and map<string, string> values take JSON strings only', () => {
  const create = (id: string, labels: unknown) =>
    post(`/v1/${LOC}/keyRings/bound/cryptoKeys?cryptoKeyId=${id}`, { purpose: 'ENCRYPT_DECRYPT', labels });

  it.each([
    ['a number', { team: 1 }, "Invalid value at 'crypto_key.labels[team]' (TYPE_STRING), 1"],
    ['a boolean', { team: true }, "Invalid value at 'crypto_key.labels[team]' (TYPE_STRING), true"],
    ['null', { team: null }, "Invalid value at 'crypto_key.labels[team]' (TYPE_STRING), null"],
    ['a list', { team: ['a'] }, 'Invalid value at \'crypto_key.labels[team]\' (TYPE_STRING), ["a"]'],
    [
      'an object',
      { team: { a: 'b' } },
      'Invalid value at \'crypto_key.labels[team]\' (TYPE_STRING), {"a":"b"}',
    ],
  ])('a label value that is %s is refused with 400 and no key is made', async (_what, labels, message) => {
    const id = `l-${Math.random().toString(36).slice(2, 10)}`;
    const res = await create(id, labels);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: { code: 400, message, status: 'INVALID_ARGUMENT' } });
    const missing = await rest(`/v1/${LOC}/keyRings/bound/cryptoKeys/${id}`);
    expect(missing.status).toBe(404);
  });

  it('string label values are taken, through the client as well', async () => {
    const res = await create('labelled', { team: 'a', n: '1' });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { labels: unknown }).labels).toEqual({ team: 'a', n: '1' });
    const [key] = await kms.getCryptoKey({ name: `${LOC}/keyRings/bound/cryptoKeys/labelled` });
    expect(key.labels).toEqual({ team: 'a', n: '1' });
    const [updated] = await kms.updateCryptoKey({
      cryptoKey: { name: key.name ?? null, labels: { team: 'b' } },
      updateMask: { paths: ['labels'] },
    });
    expect(updated.labels).toEqual({ team: 'b' });
  });

  it('a number in another string field is refused too (an IAM binding role)', async () => {
    const res = await post(`/v1/${LOC}/keyRings/bound:setIamPolicy`, {
      policy: { bindings: [{ role: 5, members: ['user:a@example.com'] }] },
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toBe(
      "Invalid value at 'policy.bindings[0].role' (TYPE_STRING), 5",
    );
  });
});

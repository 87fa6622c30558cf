import { createHash, createPublicKey, createVerify } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { KeyManagementServiceClient } from '@google-cloud/kms';
import { OAuth2Client } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CloudKmsServer, startCloudKmsServer } from '../src/gcp/index.js';
import { grpc, makeClient } from './gcp-support.js';

// The REST (HTTP/JSON) surface, transcoded from the protos' google.api.http rules: the official
// Node client in `fallback` mode (REST), and plain fetch for what the client does not show.
const LOC = 'projects/keyport-rest/locations/global';

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
});
afterAll(async () => {
  await kms?.close();
  await server?.stop();
});

async function code(p: Promise<unknown>): Promise<number | undefined> {
  return p.then(
    () => undefined,
    (e: { code?: number }) => e.code,
  );
}

const rest = (path: string, init: RequestInit = {}) => fetch(`${server.restUrl}${path}`, init);
const post = (path: string, body: unknown) =>
  rest(path, {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });

describe('Cloud KMS over REST with @google-cloud/kms (fallback: true)', () => {
  let ring: string;
  it('creates a key ring and keys, encrypts and decrypts with AAD and checksums', async () => {
    const [r] = await kms.createKeyRing({ parent: LOC, keyRingId: 'fallback', keyRing: {} });
    ring = r.name!;
    expect(ring).toBe(`${LOC}/keyRings/fallback`);
    const [key] = await kms.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'sym',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT', labels: { team: 'a' } },
    });
    expect(key.primary?.state).toBe('ENABLED');
    const aad = Buffer.from('context');
    const [enc] = await kms.encrypt({
      name: key.name!,
      plaintext: Buffer.from('over rest'),
      additionalAuthenticatedData: aad,
    });
    expect(enc.name).toBe(`${key.name}/cryptoKeyVersions/1`);
    expect(Number(enc.ciphertextCrc32c?.value)).toBeGreaterThan(0);
    const [dec] = await kms.decrypt({
      name: key.name!,
      ciphertext: enc.ciphertext!,
      additionalAuthenticatedData: aad,
    });
    expect(Buffer.from(dec.plaintext as Uint8Array).toString()).toBe('over rest');
    expect(
      await code(
        kms.decrypt({
          name: key.name!,
          ciphertext: enc.ciphertext!,
          additionalAuthenticatedData: Buffer.from('x'),
        }),
      ),
    ).toBe(grpc.status.INVALID_ARGUMENT);
    expect(await code(kms.getCryptoKey({ name: `${ring}/cryptoKeys/none` }))).toBe(grpc.status.NOT_FOUND);
  });

  it('signs and serves the public key with its version name; lists with filter and order; rotates; IAM', async () => {
    const [key] = await kms.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'signer',
      cryptoKey: { purpose: 'ASYMMETRIC_SIGN', versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256' } },
    });
    const version = `${key.name}/cryptoKeyVersions/1`;
    const digest = createHash('sha256').update('data').digest();
    const [sig] = await kms.asymmetricSign({ name: version, digest: { sha256: digest } });
    const [pub] = await kms.getPublicKey({ name: version });
    expect(pub.name).toBe(version);
    expect(
      createVerify('sha256')
        .update('data')
        .verify(createPublicKey(pub.pem!), Buffer.from(sig.signature as Uint8Array)),
    ).toBe(true);

    const [filtered] = await kms.listCryptoKeys(
      { parent: ring, filter: 'labels.team=a' },
      { autoPaginate: false },
    );
    expect(filtered.map((k) => k.name)).toEqual([`${ring}/cryptoKeys/sym`]);
    const [ordered] = await kms.listCryptoKeys(
      { parent: ring, orderBy: 'name desc' },
      { autoPaginate: false },
    );
    expect(ordered.map((k) => k.name!.split('/').pop())).toEqual(['sym', 'signer']);

    const [v2] = await kms.createCryptoKeyVersion({ parent: `${ring}/cryptoKeys/sym`, cryptoKeyVersion: {} });
    const [updated] = await kms.updateCryptoKeyPrimaryVersion({
      name: `${ring}/cryptoKeys/sym`,
      cryptoKeyVersionId: '2',
    });
    expect(updated.primary?.name).toBe(v2.name);
    const [patched] = await kms.updateCryptoKey({
      cryptoKey: { name: `${ring}/cryptoKeys/sym`, labels: { team: 'b' } },
      updateMask: { paths: ['labels'] },
    });
    expect(patched.labels).toEqual({ team: 'b' });

    const [policy] = await kms.setIamPolicy({
      resource: key.name!,
      policy: { bindings: [{ role: 'roles/cloudkms.signer', members: ['user:a@example.com'] }] },
    } as Parameters<KeyManagementServiceClient['setIamPolicy']>[0]);
    expect(policy.bindings?.[0]?.role).toBe('roles/cloudkms.signer');
    const [got] = await kms.getIamPolicy({ resource: key.name! } as Parameters<
      KeyManagementServiceClient['getIamPolicy']
    >[0]);
    expect(got.etag).toEqual(policy.etag);
  });

  it('deletes a destroyed version and the key through long-running operations', async () => {
    const [key] = await kms.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'doomed',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT', destroyScheduledDuration: { seconds: 86_400 } },
    });
    const v1 = `${key.name}/cryptoKeyVersions/1`;
    await kms.destroyCryptoKeyVersion({ name: v1 });
    server.clock.advance(86_401_000);
    const [op] = await kms.deleteCryptoKeyVersion({ name: v1 });
    await op.promise();
    const [keyOp] = await kms.deleteCryptoKey({ name: key.name! });
    const [, meta] = await keyOp.promise();
    const retired = (meta as { retiredResource?: string }).retiredResource!;
    const [rr] = await kms.getRetiredResource({ name: retired });
    expect(rr.originalResource).toBe(key.name);
    const polled = await kms.checkDeleteCryptoKeyProgress(keyOp.name!);
    expect(polled.done).toBe(true);
  });
});

describe("Locations (the clients' getLocation / listLocations), over REST and gRPC", () => {
  it('lists the service locations and those in use, with KMS LocationMetadata', async () => {
    const grpcClient = makeClient(server.port);
    try {
      // (Over REST the Node client cannot decode the Any in `metadata`: its fallback root lacks
      // LocationMetadata. The service answers the same, so REST is checked with fetch below.)
      for (const client of [grpcClient]) {
        // gax resolves [response, …] although the type says the response itself.
        const got: unknown = await client.getLocation({ name: LOC } as Parameters<
          KeyManagementServiceClient['getLocation']
        >[0]);
        const loc = (Array.isArray(got) ? got[0] : got) as { locationId?: string };
        expect(loc.locationId).toBe('global');
        const ids: string[] = [];
        for await (const l of client.listLocationsAsync({ name: 'projects/keyport-rest' } as Parameters<
          KeyManagementServiceClient['listLocationsAsync']
        >[0])) {
          ids.push(l.locationId!);
        }
        expect(ids).toEqual(expect.arrayContaining(['global', 'us-east1', 'europe-west1']));
      }
      const raw = await rest('/v1/projects/keyport-rest/locations/us-east1');
      expect(await raw.json()).toMatchObject({
        locationId: 'us-east1',
        metadata: { '@type': 'type.googleapis.com/google.cloud.kms.v1.LocationMetadata', hsmAvailable: true },
      });
      const list = (await (await rest('/v1/projects/keyport-rest/locations?pageSize=2')).json()) as {
        locations: Array<{ locationId: string }>;
        nextPageToken: string;
      };
      expect(list.locations).toHaveLength(2);
      expect(list.nextPageToken).toBeTruthy();
    } finally {
      await grpcClient.close();
    }
  });
});

describe('Cloud KMS over REST with plain fetch', () => {
  it('accepts proto field names and lowerCamel JSON names, query parameters and custom verbs', async () => {
    expect((await post(`/v1/${LOC}/keyRings?keyRingId=plain`, {})).status).toBe(200);
    const created = await post(`/v1/${LOC}/keyRings/plain/cryptoKeys?crypto_key_id=k`, {
      purpose: 'ENCRYPT_DECRYPT',
      version_template: { protection_level: 'SOFTWARE' },
    });
    expect(created.status).toBe(200);
    const key = (await created.json()) as {
      name: string;
      destroyScheduledDuration: string;
      createTime: string;
    };
    expect(key.destroyScheduledDuration).toBe('2592000s');
    expect(key.createTime).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    const enc = await post(`/v1/${key.name}:encrypt`, { plaintext: Buffer.from('hi').toString('base64') });
    const body = (await enc.json()) as {
      ciphertext: string;
      ciphertextCrc32c: string;
      protectionLevel: string;
    };
    expect(typeof body.ciphertextCrc32c).toBe('string'); // int64 wrappers are JSON strings
    expect(body.protectionLevel).toBe('SOFTWARE');
    // The client's `$alt=json;enum-encoding=int` asks for enums as numbers.
    const numeric = await post(`/v1/${key.name}:encrypt?$alt=json%3Benum-encoding%3Dint`, {
      plaintext: Buffer.from('hi').toString('base64'),
    });
    expect(((await numeric.json()) as { protectionLevel: number }).protectionLevel).toBe(1);
    const list = await rest(
      `/v1/${LOC}/keyRings/plain/cryptoKeys?pageSize=1&filter=${encodeURIComponent('purpose=ENCRYPT_DECRYPT')}`,
    );
    expect(((await list.json()) as { cryptoKeys: unknown[] }).cryptoKeys).toHaveLength(1);
    const iam = await rest(`/v1/${key.name}:getIamPolicy?options.requestedPolicyVersion=3`);
    expect(iam.status).toBe(200);
    // A FieldMask in JSON is lowerCamel paths joined by commas (google/protobuf/field_mask.proto);
    // the proto names the Node client sends (`updateMask=rotation_period,…`) read the same.
    const next = new Date(server.clock.now().getTime() + 86_400_000).toISOString();
    for (const mask of [
      'labels,rotationPeriod,nextRotationTime',
      'labels,rotation_period,next_rotation_time',
    ]) {
      const patched = await rest(`/v1/${key.name}?updateMask=${mask}`, {
        method: 'PATCH',
        body: JSON.stringify({ labels: { m: 'x' }, rotationPeriod: '172800s', nextRotationTime: next }),
      });
      expect(patched.status, mask).toBe(200);
      expect(await patched.json()).toMatchObject({ labels: { m: 'x' }, rotationPeriod: '172800s' });
    }
  });

  it("answers in Google's error shape: unknown fields, bad JSON, unknown URLs, too-large bodies", async () => {
    const unknown = await post(`/v1/${LOC}/keyRings/plain/cryptoKeys/k:encrypt`, {
      bogus: 1,
      plaintext: 'aGk=',
    });
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toMatchObject({ error: { code: 400, status: 'INVALID_ARGUMENT' } });
    const bad = await post(`/v1/${LOC}/keyRings/plain/cryptoKeys/k:encrypt`, '{not json');
    expect(bad.status).toBe(400);
    const proto = await post(`/v1/${LOC}/keyRings/plain/cryptoKeys/k:encrypt`, {
      __proto__: 1,
      plaintext: 'aGk=',
    });
    expect([200, 400]).toContain(proto.status);
    const missing = await rest(`/v1/${LOC}/keyRings/none`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: 404, status: 'NOT_FOUND' } });
    const nowhere = await rest('/v2/whatever');
    expect(nowhere.status).toBe(404);
    const wrongType = await post(`/v1/${LOC}/keyRings/plain/cryptoKeys/k:encrypt`, { plaintext: 12 });
    expect(wrongType.status).toBe(400);
    const huge = await post(`/v1/${LOC}/keyRings/plain/cryptoKeys/k:encrypt`, {
      plaintext: 'A'.repeat(12 * 1024 * 1024),
    });
    expect(huge.status).toBe(400);
    expect(await huge.json()).toMatchObject({ error: { code: 400, status: 'INVALID_ARGUMENT' } });
    // Still serving.
    expect((await rest(`/v1/${LOC}/keyRings/plain`)).status).toBe(200);
  });

  // proto3 JSON (https://protobuf.dev/programming-guides/json/): bytes are standard or URL-safe
  // base64, padded or not; the service refuses anything else before the method runs, and a list
  // where the field is not repeated. The server used to decode "!!!" leniently as zero bytes.
  it('bytes fields must be base64 (standard or URL-safe, padding optional); a list in a singular field is refused', async () => {
    const name = `/v1/${LOC}/keyRings/plain/cryptoKeys/k`;
    for (const plaintext of ['!!!', 'aGk=x', 'a', 'aGk=aGk=', 'aG k=']) {
      const res = await post(`${name}:encrypt`, { plaintext });
      expect(res.status, plaintext).toBe(400);
      const body = (await res.json()) as { error: { message: string; status: string } };
      expect(body.error.status).toBe('INVALID_ARGUMENT');
      expect(body.error.message).toBe(
        `Invalid value at 'plaintext' (TYPE_BYTES), Base64 decoding failed for ${JSON.stringify(plaintext)}`,
      );
    }
    const aad = await post(`${name}:encrypt`, { plaintext: 'aGk=', additional_authenticated_data: '@@' });
    expect(((await aad.json()) as { error: { message: string } }).error.message).toContain(
      "Invalid value at 'additional_authenticated_data' (TYPE_BYTES)",
    );
    // Every base64 form proto3 JSON allows decodes to the same bytes.
    const bytes = Buffer.from([0xfb, 0xff, 0xbe, 0x01]);
    for (const plaintext of [bytes.toString('base64'), bytes.toString('base64url'), '+/++AQ', '-_-+AQ==']) {
      const enc = await post(`${name}:encrypt`, { plaintext });
      expect(enc.status, plaintext).toBe(200);
      const { ciphertext } = (await enc.json()) as { ciphertext: string };
      const dec = await post(`${name}:decrypt`, { ciphertext });
      expect(
        Buffer.from(((await dec.json()) as { plaintext: string }).plaintext, 'base64'),
        plaintext,
      ).toEqual(bytes);
    }
    // A deeply nested list where bytes belong: refused at once, without recursing into it.
    const deep = `{"plaintext":"aGk=","additionalAuthenticatedData":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const nested = await post(`${name}:encrypt`, deep);
    expect(nested.status).toBe(400);
    expect(((await nested.json()) as { error: { message: string } }).error.message).toBe(
      'Invalid JSON payload received. Proto field is not repeating, cannot start list.',
    );
    expect((await rest(`/v1/${LOC}/keyRings/plain`)).status).toBe(200);
  });

  it('injected faults apply over REST too: throttling is 429 RESOURCE_EXHAUSTED, a drop closes the connection', async () => {
    server.faults.set({ throttleNext: 1 });
    const throttled = await rest(`/v1/${LOC}/keyRings/plain`);
    expect(throttled.status).toBe(429);
    expect(await throttled.json()).toMatchObject({ error: { code: 429, status: 'RESOURCE_EXHAUSTED' } });
    server.faults.set({ dropNext: 1 });
    await expect(rest(`/v1/${LOC}/keyRings/plain`)).rejects.toThrow();
    server.faults.clear();
    expect((await rest(`/v1/${LOC}/keyRings/plain`)).status).toBe(200);
  });

  it('serves REST over TLS with the printed CA when started with tls', async () => {
    const tlsServer = await startCloudKmsServer({ tls: true });
    try {
      expect(tlsServer.restUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const { request } = await import('node:https');
      const ca = await readFile(tlsServer.caFile!);
      const status = await new Promise<number>((resolve, reject) => {
        request(`${tlsServer.restUrl}/v1/${LOC}/keyRings?keyRingId=tls`, { method: 'POST', ca }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
          .on('error', reject)
          .end('{}');
      });
      expect(status).toBe(200);
    } finally {
      await tlsServer.stop();
    }
  });
});

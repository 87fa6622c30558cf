import { createHash, createPublicKey, createVerify, X509Certificate } from 'node:crypto';
import { connect } from 'node:http2';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLOUD_KMS_ATTESTATION_TEST_CA_PEM,
  CLOUD_KMS_SYNTHETIC_ATTESTATION_MARKER,
} from '../src/gcp/index.js';
import { bytes, expectCode, grpc, type Harness, LOCATION, newKeyRing, startHarness } from './gcp-support.js';

// One test per divergence from the service that issue #25 lists, each through the official
// client (or raw HTTP/2 where the client cannot send the bytes).
describe('Cloud KMS server: divergences from the service, fixed', () => {
  let h: Harness;
  let ring: string;
  beforeAll(async () => {
    h = await startHarness();
    ring = await newKeyRing(h.client);
  });
  afterAll(async () => {
    await h.close();
  });

  it("GetPublicKey returns the version's resource name", async () => {
    const [key] = await h.client.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'pub-name',
      cryptoKey: { purpose: 'ASYMMETRIC_SIGN', versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256' } },
    });
    const version = `${key.name}/cryptoKeyVersions/1`;
    const [pub] = await h.client.getPublicKey({ name: version });
    expect(pub.name).toBe(version);
    const [der] = await h.client.getPublicKey({ name: version, publicKeyFormat: 'DER' });
    expect(der.name).toBe(version);
  });

  it('DeleteCryptoKeyVersion deletes only DESTROYED versions, DeleteCryptoKey only empty keys, and retires the name', async () => {
    const [key] = await h.client.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'to-delete',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT', destroyScheduledDuration: { seconds: 86_400 } },
    });
    const v1 = `${key.name}/cryptoKeyVersions/1`;
    await expectCode(h.client.deleteCryptoKeyVersion({ name: v1 }), grpc.status.FAILED_PRECONDITION);
    await expectCode(h.client.deleteCryptoKey({ name: key.name! }), grpc.status.FAILED_PRECONDITION);
    await h.client.destroyCryptoKeyVersion({ name: v1 });
    h.server.clock.advance(86_400_000 + 1000);
    const [op] = await h.client.deleteCryptoKeyVersion({ name: v1 });
    expect(op.name).toMatch(/^projects\/keyport-test\/locations\/us-east1\/operations\//);
    await op.promise();
    await expectCode(h.client.getCryptoKeyVersion({ name: v1 }), grpc.status.NOT_FOUND);
    // The operation can be read back, as clients that poll do.
    const polled = await h.client.checkDeleteCryptoKeyVersionProgress(op.name!);
    expect(polled.done).toBe(true);

    const [keyOp] = await h.client.deleteCryptoKey({ name: key.name! });
    const [, metadata] = await keyOp.promise();
    const retiredName = (metadata as { retiredResource?: string }).retiredResource;
    expect(retiredName).toMatch(
      /^projects\/keyport-test\/locations\/us-east1\/retiredResources\/[0-9a-f-]{36}$/,
    );
    await expectCode(h.client.getCryptoKey({ name: key.name! }), grpc.status.NOT_FOUND);

    const [retired] = await h.client.getRetiredResource({ name: retiredName! });
    expect(retired.originalResource).toBe(key.name);
    expect(retired.resourceType).toBe('cloudkms.googleapis.com/CryptoKey');
    expect(Number(retired.deleteTime?.seconds)).toBeGreaterThan(0);
    const [list] = await h.client.listRetiredResources({ parent: LOCATION }, { autoPaginate: false });
    expect(list.map((r) => r.name)).toContain(retiredName);
    // A retired name is never reused.
    await expectCode(
      h.client.createCryptoKey({
        parent: ring,
        cryptoKeyId: 'to-delete',
        cryptoKey: { purpose: 'ENCRYPT_DECRYPT' },
      }),
      grpc.status.ALREADY_EXISTS,
    );
    await expectCode(
      h.client.getRetiredResource({ name: `${LOCATION}/retiredResources/nope` }),
      grpc.status.NOT_FOUND,
    );
    await expectCode(
      h.client.getRetiredResource({ name: `${ring}/retiredResources/x` }),
      grpc.status.INVALID_ARGUMENT,
    );
  });

  it('lists honour filter (AIP-160 subset of the KMS page) and order_by (AIP-132)', async () => {
    const r = await newKeyRing(h.client);
    const make = (id: string, labels: Record<string, string>, algorithm?: 'EC_SIGN_P256_SHA256') =>
      h.client.createCryptoKey({
        parent: r,
        cryptoKeyId: id,
        cryptoKey: algorithm
          ? { purpose: 'ASYMMETRIC_SIGN', labels, versionTemplate: { algorithm } }
          : { purpose: 'ENCRYPT_DECRYPT', labels },
      });
    await make('alpha-1', { team: 'alpha', tier: '1' });
    await make('beta-2', { team: 'beta', tier: '2' });
    await make('Cloud-3', { team: 'alpha', tier: '3' }, 'EC_SIGN_P256_SHA256');
    const ids = async (filter?: string, orderBy?: string) => {
      const [keys] = await h.client.listCryptoKeys(
        { parent: r, ...(filter !== undefined && { filter }), ...(orderBy !== undefined && { orderBy }) },
        { autoPaginate: false },
      );
      return keys.map((k) => k.name!.split('/').pop());
    };
    expect(await ids('labels.team=alpha')).toEqual(['Cloud-3', 'alpha-1']);
    expect(await ids('labels.team="alpha" AND purpose=ENCRYPT_DECRYPT')).toEqual(['alpha-1']);
    expect(await ids('labels.team=beta OR labels.tier=3')).toEqual(['Cloud-3', 'beta-2']);
    expect(await ids('name:"cloud"')).toEqual(['Cloud-3']); // ":" is a case-insensitive substring
    expect(await ids('NOT labels.team=alpha')).toEqual(['beta-2']);
    expect(await ids('-labels.team=alpha')).toEqual(['beta-2']);
    expect(await ids('labels.team != alpha')).toEqual(['beta-2']);
    expect(await ids('primary.algorithm=GOOGLE_SYMMETRIC_ENCRYPTION')).toEqual(['alpha-1', 'beta-2']);
    expect(await ids('version_template.algorithm=EC_SIGN_P256_SHA256')).toEqual(['Cloud-3']);
    expect(await ids('labels.tier>=2 (labels.team=beta OR labels.team=alpha)')).toEqual([
      'Cloud-3',
      'beta-2',
    ]);
    expect(await ids('create_time > "2000-01-01T00:00:00Z"')).toHaveLength(3);
    expect(await ids(undefined, 'labels.tier desc')).toEqual(['Cloud-3', 'beta-2', 'alpha-1']);
    expect(await ids(undefined, 'labels.team, name desc')).toEqual(['alpha-1', 'Cloud-3', 'beta-2']);
    await expectCode(
      h.client.listCryptoKeys({ parent: r, filter: 'nosuchfield=1' }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(h.client.listCryptoKeys({ parent: r, filter: 'name = ' }), grpc.status.INVALID_ARGUMENT);
    await expectCode(
      h.client.listCryptoKeys({ parent: r, filter: '((((name:a' }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(
      h.client.listCryptoKeys({ parent: r, orderBy: 'name sideways' }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(
      h.client.listCryptoKeys({ parent: r, filter: `${'('.repeat(200)}name:a${')'.repeat(200)}` }),
      grpc.status.INVALID_ARGUMENT,
    );

    // A page token belongs to one filter: reusing it with another is INVALID_ARGUMENT (AIP-158).
    const [, next] = await h.client.listCryptoKeys(
      { parent: r, filter: 'labels.team:a', pageSize: 1 },
      { autoPaginate: false },
    );
    expect(next?.pageToken).toBeTruthy();
    const [second] = await h.client.listCryptoKeys(
      { parent: r, filter: 'labels.team:a', pageSize: 1, pageToken: next!.pageToken! },
      { autoPaginate: false },
    );
    expect(second).toHaveLength(1);
    await expectCode(
      h.client.listCryptoKeys({ parent: r, filter: 'labels.team:b', pageToken: next!.pageToken! }),
      grpc.status.INVALID_ARGUMENT,
    );

    // Versions and key rings filter too; a cleanup by state, as users write it.
    const [versions] = await h.client.listCryptoKeyVersions(
      { parent: `${r}/cryptoKeys/alpha-1`, filter: 'state=ENABLED' },
      { autoPaginate: false },
    );
    expect(versions).toHaveLength(1);
    const [rings] = await h.client.listKeyRings(
      { parent: LOCATION, filter: `name=${r}`, orderBy: 'createTime desc' },
      { autoPaginate: false },
    );
    expect(rings.map((x) => x.name)).toEqual([r]);
  });

  it('HSM versions carry a well-formed, synthetic attestation signed under the documented test CA', async () => {
    const [key] = await h.client.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'hsm-attested',
      cryptoKey: {
        purpose: 'ASYMMETRIC_SIGN',
        versionTemplate: { algorithm: 'EC_SIGN_P384_SHA384', protectionLevel: 'HSM' },
      },
    });
    const [version] = await h.client.getCryptoKeyVersion({ name: `${key.name}/cryptoKeyVersions/1` });
    const att = version.attestation!;
    expect(att.format).toBe('CAVIUM_V2_COMPRESSED');
    const raw = gunzipSync(bytes(att.content));
    const body = raw.subarray(0, raw.length - 256);
    const signature = raw.subarray(raw.length - 256);
    expect(body.toString()).toContain(CLOUD_KMS_SYNTHETIC_ATTESTATION_MARKER);
    const chain = att.certChains!.caviumCerts!;
    const card = new X509Certificate(chain[0]!);
    const ca = new X509Certificate(CLOUD_KMS_ATTESTATION_TEST_CA_PEM);
    expect(card.verify(ca.publicKey)).toBe(true);
    expect(card.subject).toContain('TEST ONLY');
    expect(createVerify('sha256').update(body).verify(card.publicKey, signature)).toBe(true);
    // The statement binds the version's public key.
    const [pub] = await h.client.getPublicKey({ name: version.name! });
    const spki = createPublicKey(pub.pem!).export({ type: 'spki', format: 'der' });
    expect(body.toString()).toContain(createHash('sha256').update(spki).digest('hex'));
    // Software versions have none.
    const [soft] = await h.client.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'soft',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT' },
    });
    expect(soft.primary?.attestation ?? null).toBeNull();
    // Lists show it only in the FULL view, as CryptoKeyVersionView says.
    const [basic] = await h.client.listCryptoKeyVersions({ parent: key.name! }, { autoPaginate: false });
    expect(basic[0]?.attestation ?? null).toBeNull();
    const [full] = await h.client.listCryptoKeyVersions(
      { parent: key.name!, view: 'FULL' },
      { autoPaginate: false },
    );
    expect(full[0]?.attestation?.format).toBe('CAVIUM_V2_COMPRESSED');
    const [keys] = await h.client.listCryptoKeys(
      { parent: ring, filter: 'name:hsm-attested', versionView: 'FULL' },
      { autoPaginate: false },
    );
    expect(keys[0]?.primary?.attestation ?? null).toBeNull(); // asymmetric keys have no primary
    // An HSM import job's wrapping key is attested too, once ACTIVE.
    const [job] = await h.client.createImportJob({
      parent: ring,
      importJobId: 'hsm-job',
      importJob: { importMethod: 'RSA_OAEP_3072_SHA256_AES_256', protectionLevel: 'HSM' },
    });
    let active = job;
    for (let i = 0; i < 100 && active.state !== 'ACTIVE'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      [active] = await h.client.getImportJob({ name: job.name! });
    }
    const jobRaw = gunzipSync(bytes(active.attestation?.content));
    const jobBody = jobRaw.subarray(0, jobRaw.length - 256);
    expect(jobBody.toString()).toContain(job.name!);
    const jobSpki = createPublicKey(active.publicKey!.pem!).export({ type: 'spki', format: 'der' });
    expect(jobBody.toString()).toContain(createHash('sha256').update(jobSpki).digest('hex'));
  });

  it('an unknown purpose, algorithm or protection level is INVALID_ARGUMENT; a known one not emulated is UNIMPLEMENTED', async () => {
    const create = (cryptoKey: object) =>
      h.client.createCryptoKey({ parent: ring, cryptoKeyId: 'enum-check', cryptoKey });
    await expectCode(create({ purpose: 99 }), grpc.status.INVALID_ARGUMENT);
    await expectCode(
      create({ purpose: 'ENCRYPT_DECRYPT', versionTemplate: { algorithm: 9999 } }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(
      create({ purpose: 'ENCRYPT_DECRYPT', versionTemplate: { protectionLevel: 77 } }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(create({ purpose: 'RAW_ENCRYPT_DECRYPT' }), grpc.status.UNIMPLEMENTED);
  });

  it('names are bounded as the service bounds them and never echoed back at any length', async () => {
    const long = 'k'.repeat(64);
    await expectCode(
      h.client.getCryptoKey({ name: `${ring}/cryptoKeys/${long}` }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(
      h.client.getKeyRing({ name: `${LOCATION}/keyRings/${'r'.repeat(5000)}` }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(
      h.client.getCryptoKey({ name: `${ring}/cryptoKeys/bad.char` }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(
      h.client.getKeyRing({ name: 'projects/UPPER/locations/global/keyRings/x' }),
      grpc.status.INVALID_ARGUMENT,
    );
    const err = await h.client
      .getKeyRing({ name: `${LOCATION}/keyRings/${'r'.repeat(5000)}` })
      .catch((e: Error) => e);
    expect((err as Error).message.length).toBeLessThan(1000);
    await expectCode(
      h.client.createKeyRing({ parent: LOCATION, keyRingId: 'x'.repeat(64), keyRing: {} }),
      grpc.status.INVALID_ARGUMENT,
    );
  });

  it('an undecodable request body is INVALID_ARGUMENT, not INTERNAL', async () => {
    const session = connect(`http://${h.server.address}`);
    try {
      const code = await new Promise<string | undefined>((resolve, reject) => {
        const req = session.request({
          ':method': 'POST',
          ':path': '/google.cloud.kms.v1.KeyManagementService/GetKeyRing',
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        req.on('trailers', (t) => resolve(t['grpc-status'] as string | undefined));
        req.on('response', (hdrs) => {
          if (hdrs['grpc-status'] !== undefined) resolve(hdrs['grpc-status'] as string);
        });
        req.on('error', reject);
        req.resume();
        // One gRPC frame whose payload is a truncated varint-length string field: not a message.
        const payload = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x41]);
        const frame = Buffer.alloc(5 + payload.length);
        frame.writeUInt32BE(payload.length, 1);
        payload.copy(frame, 5);
        req.end(frame);
      });
      expect(Number(code)).toBe(grpc.status.INVALID_ARGUMENT);
    } finally {
      session.close();
    }
  });
});

import * as nodeCrypto from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32c, startCloudKmsServer } from '../src/gcp/index.js';
import {
  as,
  bytes,
  expectCode,
  grpc,
  type Harness,
  makeClient,
  newKeyRing,
  startHarness,
} from './gcp-support.js';

// Post-quantum keys: ML-KEM (purpose KEY_ENCAPSULATION, the Decapsulate RPC) and ML-DSA / SLH-DSA
// signing, on Node's own implementations (Node 24.7 and newer). The public key leaves the server
// only in NIST_PQC form (the raw FIPS 203/204/205 key), which these tests put back into a
// SubjectPublicKeyInfo by hand and hand to Node: Node, not the server, checks what comes back.

type PqcType = 'ml-kem-768' | 'ml-kem-1024' | 'ml-dsa-65' | 'slh-dsa-sha2-128s';
const generate = nodeCrypto.generateKeyPairSync as (type: string) => nodeCrypto.KeyPairKeyObjectResult;
const encapsulate = (
  nodeCrypto as unknown as {
    encapsulate?: (key: nodeCrypto.KeyObject) => { sharedKey: Buffer; ciphertext: Buffer };
  }
).encapsulate;

function nodeHas(type: PqcType): boolean {
  try {
    generate(type);
    return true;
  } catch {
    return false;
  }
}
const PQC = nodeHas('ml-kem-768') && encapsulate !== undefined;

/** A public KeyObject from a raw NIST_PQC key: the SPKI of a key Node made, with its key swapped. */
function fromNistPqc(type: PqcType, raw: Buffer): nodeCrypto.KeyObject {
  const spki = generate(type).publicKey.export({ type: 'spki', format: 'der' });
  expect(raw.length, 'raw key length').toBeLessThan(spki.length);
  const header = spki.subarray(0, spki.length - raw.length);
  return nodeCrypto.createPublicKey({ key: Buffer.concat([header, raw]), format: 'der', type: 'spki' });
}

// One of the two suites is registered, by what this Node offers (neither is ever reported skipped).
const suite = (offers: boolean): typeof describe | ((name: string, body: () => void) => void) =>
  offers === PQC ? describe : () => undefined;

suite(false)('Cloud KMS server: post-quantum algorithms on a Node without them', () => {
  it('answers UNIMPLEMENTED, naming the Node version it needs', async () => {
    const h = await startHarness();
    try {
      const ring = await newKeyRing(h.client);
      const err = await h.client
        .createCryptoKey({
          parent: ring,
          cryptoKeyId: 'kem',
          cryptoKey: { purpose: 'KEY_ENCAPSULATION', versionTemplate: { algorithm: 'ML_KEM_768' } },
        })
        .then(
          () => undefined,
          (e: { code?: number; details?: string }) => e,
        );
      expect(err?.code).toBe(grpc.status.UNIMPLEMENTED);
      expect(err?.details).toMatch(/Node 24\.7/);
    } finally {
      await h.close();
    }
  });
});

suite(true)('Cloud KMS server: post-quantum keys', () => {
  let h: Harness;
  let ring: string;
  const make = async (id: string, purpose: 'KEY_ENCAPSULATION' | 'ASYMMETRIC_SIGN', algorithm: string) => {
    const [k] = await h.client.createCryptoKey({
      parent: ring,
      cryptoKeyId: id,
      cryptoKey: { purpose, versionTemplate: { algorithm: algorithm as 'ML_KEM_768' } },
    });
    return `${k.name}/cryptoKeyVersions/1`;
  };
  const nistPqc = async (name: string): Promise<Buffer> => {
    const [pub] = await h.client.getPublicKey({ name, publicKeyFormat: 'NIST_PQC' });
    expect(pub.name).toBe(name);
    expect(pub.publicKeyFormat).toBe('NIST_PQC');
    expect(pub.pem ?? '').toBe('');
    const data = bytes(pub.publicKey?.data);
    expect(Number(pub.publicKey?.crc32cChecksum?.value)).toBe(crc32c(data));
    return data;
  };
  beforeAll(async () => {
    h = await startHarness({
      projectBindings: [
        { role: 'roles/cloudkms.publicKeyViewer', members: ['user:viewer@example.com'] },
        { role: 'roles/cloudkms.decapsulator', members: ['user:kem@example.com'] },
      ],
    });
    ring = await newKeyRing(h.client);
  });
  afterAll(async () => {
    await h.close();
  });

  for (const [algorithm, type, publicBytes, ciphertextBytes] of [
    ['ML_KEM_768', 'ml-kem-768', 1184, 1088],
    ['ML_KEM_1024', 'ml-kem-1024', 1568, 1568],
  ] as const) {
    it(`${algorithm}: the NIST_PQC public key encapsulates, Decapsulate returns the same shared secret`, async () => {
      const name = await make(algorithm.toLowerCase().replaceAll('_', '-'), 'KEY_ENCAPSULATION', algorithm);
      const [version] = await h.client.getCryptoKeyVersion({ name });
      expect(version.state).toBe('ENABLED');
      expect(version.algorithm).toBe(algorithm);
      const raw = await nistPqc(name);
      expect(raw.length).toBe(publicBytes);
      const { sharedKey, ciphertext } = encapsulate!(fromNistPqc(type, raw));
      expect(ciphertext.length).toBe(ciphertextBytes);
      const [out] = await h.client.decapsulate({
        name,
        ciphertext,
        ciphertextCrc32c: { value: crc32c(ciphertext) },
      });
      expect(out.name).toBe(name);
      expect(bytes(out.sharedSecret)).toEqual(sharedKey);
      expect(Number(out.sharedSecretCrc32c)).toBe(crc32c(sharedKey));
      expect(out.verifiedCiphertextCrc32c).toBe(true);
      expect(out.protectionLevel).toBe('SOFTWARE');
      // Without a checksum: still decapsulated, and nothing claims it was verified.
      const [plain] = await h.client.decapsulate({ name, ciphertext });
      expect(bytes(plain.sharedSecret)).toEqual(sharedKey);
      expect(plain.verifiedCiphertextCrc32c).toBe(false);
    });
  }

  it('Decapsulate: implicit rejection for a foreign ciphertext, INVALID_ARGUMENT for a wrong length or checksum', async () => {
    const name = await make('kem-rejects', 'KEY_ENCAPSULATION', 'ML_KEM_768');
    const own = encapsulate!(fromNistPqc('ml-kem-768', await nistPqc(name)));
    const foreign = Buffer.from(own.ciphertext);
    foreign[0] = (foreign[0] ?? 0) ^ 1;
    // FIPS 203: a ciphertext of the right length always decapsulates, to an unrelated secret.
    const [rejected] = await h.client.decapsulate({ name, ciphertext: foreign });
    expect(bytes(rejected.sharedSecret).length).toBe(32);
    expect(bytes(rejected.sharedSecret)).not.toEqual(own.sharedKey);
    await expectCode(
      h.client.decapsulate({ name, ciphertext: own.ciphertext.subarray(1) }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(
      h.client.decapsulate({ name, ciphertext: Buffer.alloc(0) }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(
      h.client.decapsulate({
        name,
        ciphertext: own.ciphertext,
        ciphertextCrc32c: { value: (crc32c(own.ciphertext) + 1) % 2 ** 32 },
      }),
      grpc.status.INVALID_ARGUMENT,
    );
  });

  it('GetPublicKey of a post-quantum key needs NIST_PQC; a classical key refuses NIST_PQC', async () => {
    const name = await make('kem-formats', 'KEY_ENCAPSULATION', 'ML_KEM_1024');
    await expectCode(h.client.getPublicKey({ name }), grpc.status.INVALID_ARGUMENT);
    await expectCode(h.client.getPublicKey({ name, publicKeyFormat: 'PEM' }), grpc.status.INVALID_ARGUMENT);
    await expectCode(h.client.getPublicKey({ name, publicKeyFormat: 'DER' }), grpc.status.INVALID_ARGUMENT);
    const [ec] = await h.client.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'classical',
      cryptoKey: { purpose: 'ASYMMETRIC_SIGN', versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256' } },
    });
    await expectCode(
      h.client.getPublicKey({ name: `${ec.name}/cryptoKeyVersions/1`, publicKeyFormat: 'NIST_PQC' }),
      grpc.status.INVALID_ARGUMENT,
    );
  });

  it('KEY_ENCAPSULATION keys: purpose and algorithm must agree, other keys cannot decapsulate, a disabled version cannot', async () => {
    await expectCode(
      h.client.createCryptoKey({
        parent: ring,
        cryptoKeyId: 'kem-mismatch',
        cryptoKey: { purpose: 'KEY_ENCAPSULATION', versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256' } },
      }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(
      h.client.createCryptoKey({
        parent: ring,
        cryptoKeyId: 'kem-no-alg',
        cryptoKey: { purpose: 'KEY_ENCAPSULATION' },
      }),
      grpc.status.INVALID_ARGUMENT,
    );
    const signer = await make('dsa-not-kem', 'ASYMMETRIC_SIGN', 'PQ_SIGN_ML_DSA_65');
    await expectCode(
      h.client.decapsulate({ name: signer, ciphertext: Buffer.alloc(1088) }),
      grpc.status.FAILED_PRECONDITION,
    );
    const name = await make('kem-disabled', 'KEY_ENCAPSULATION', 'ML_KEM_768');
    await h.client.updateCryptoKeyVersion({
      cryptoKeyVersion: { name, state: 'DISABLED' },
      updateMask: { paths: ['state'] },
    });
    await expectCode(
      h.client.decapsulate({ name, ciphertext: Buffer.alloc(1088) }),
      grpc.status.FAILED_PRECONDITION,
    );
  });

  it('Decapsulate needs cloudkms.cryptoKeyVersions.useToDecapsulate (roles/cloudkms.decapsulator)', async () => {
    const name = await make('kem-iam', 'KEY_ENCAPSULATION', 'ML_KEM_768');
    const own = encapsulate!(fromNistPqc('ml-kem-768', await nistPqc(name)));
    // The public key is for anyone with viewPublicKey; the private key's use is not.
    const [pub] = await h.client.getPublicKey(
      { name, publicKeyFormat: 'NIST_PQC' },
      as('user:viewer@example.com'),
    );
    expect(bytes(pub.publicKey?.data).length).toBe(1184);
    await expectCode(
      h.client.decapsulate({ name, ciphertext: own.ciphertext }, as('user:viewer@example.com')),
      grpc.status.PERMISSION_DENIED,
    );
    const [out] = await h.client.decapsulate(
      { name, ciphertext: own.ciphertext },
      as('user:kem@example.com'),
    );
    expect(bytes(out.sharedSecret)).toEqual(own.sharedKey);
  });

  for (const [algorithm, type] of [
    ['PQ_SIGN_ML_DSA_65', 'ml-dsa-65'],
    ['PQ_SIGN_SLH_DSA_SHA2_128S', 'slh-dsa-sha2-128s'],
  ] as const) {
    it(`${algorithm}: AsymmetricSign over data verifies with the NIST_PQC public key; a digest is refused`, async () => {
      const name = await make(algorithm.toLowerCase().replaceAll('_', '-'), 'ASYMMETRIC_SIGN', algorithm);
      const publicKey = fromNistPqc(type, await nistPqc(name));
      const data = Buffer.from('post-quantum, signed by the test server');
      const [signed] = await h.client.asymmetricSign({ name, data, dataCrc32c: { value: crc32c(data) } });
      const signature = bytes(signed.signature);
      expect(signed.verifiedDataCrc32c).toBe(true);
      expect(Number(signed.signatureCrc32c?.value)).toBe(crc32c(signature));
      expect(nodeCrypto.verify(null, data, publicKey, signature)).toBe(true);
      expect(nodeCrypto.verify(null, Buffer.from('something else'), publicKey, signature)).toBe(false);
      await expectCode(
        h.client.asymmetricSign({
          name,
          digest: { sha256: nodeCrypto.createHash('sha256').update(data).digest() },
        }),
        grpc.status.INVALID_ARGUMENT,
      );
    });
  }

  it('the algorithms this server lacks (X-Wing, HashSLH-DSA, external mu) answer UNIMPLEMENTED', async () => {
    for (const [id, purpose, algorithm] of [
      ['xwing', 'KEY_ENCAPSULATION', 'KEM_XWING'],
      ['hash-slh', 'ASYMMETRIC_SIGN', 'PQ_SIGN_HASH_SLH_DSA_SHA2_128S_SHA256'],
      ['mu', 'ASYMMETRIC_SIGN', 'PQ_SIGN_ML_DSA_65_EXTERNAL_MU'],
    ] as const) {
      await expectCode(
        h.client.createCryptoKey({
          parent: ring,
          cryptoKeyId: id,
          cryptoKey: { purpose, versionTemplate: { algorithm: algorithm as 'ML_KEM_768' } },
        }),
        grpc.status.UNIMPLEMENTED,
      );
    }
  });

  it('over REST: :decapsulate and getPublicKey?publicKeyFormat=NIST_PQC, int64 checksums as strings', async () => {
    const name = await make('kem-rest', 'KEY_ENCAPSULATION', 'ML_KEM_768');
    const base = h.server.restUrl!;
    const got = await fetch(`${base}/v1/${name}/publicKey?publicKeyFormat=NIST_PQC`);
    expect(got.status).toBe(200);
    const pub = (await got.json()) as {
      publicKey: { data: string; crc32cChecksum: string };
      publicKeyFormat: string;
    };
    expect(pub.publicKeyFormat).toBe('NIST_PQC');
    const raw = Buffer.from(pub.publicKey.data, 'base64');
    expect(pub.publicKey.crc32cChecksum).toBe(String(crc32c(raw)));
    const own = encapsulate!(fromNistPqc('ml-kem-768', raw));
    const res = await fetch(`${base}/v1/${name}:decapsulate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        ciphertext: own.ciphertext.toString('base64'),
        ciphertextCrc32c: String(crc32c(own.ciphertext)),
      }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toEqual({
      name,
      sharedSecret: own.sharedKey.toString('base64'),
      sharedSecretCrc32c: String(crc32c(own.sharedKey)),
      verifiedCiphertextCrc32c: true,
      protectionLevel: 'SOFTWARE',
    });
  });

  it('ML-KEM keys survive a restart from the state file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyport-kms-pqc-'));
    const stateFile = join(dir, 'state.json');
    try {
      const first = await startCloudKmsServer({ stateFile });
      const c1 = makeClient(first.port);
      const r = await newKeyRing(c1);
      const [k] = await c1.createCryptoKey({
        parent: r,
        cryptoKeyId: 'kem',
        cryptoKey: { purpose: 'KEY_ENCAPSULATION', versionTemplate: { algorithm: 'ML_KEM_768' } },
      });
      const name = `${k.name}/cryptoKeyVersions/1`;
      const [pub] = await c1.getPublicKey({ name, publicKeyFormat: 'NIST_PQC' });
      await c1.close();
      await first.stop();
      const second = await startCloudKmsServer({ stateFile });
      const c2 = makeClient(second.port);
      try {
        const own = encapsulate!(fromNistPqc('ml-kem-768', bytes(pub.publicKey?.data)));
        const [out] = await c2.decapsulate({ name, ciphertext: own.ciphertext });
        expect(bytes(out.sharedSecret)).toEqual(own.sharedKey);
      } finally {
        await c2.close();
        await second.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

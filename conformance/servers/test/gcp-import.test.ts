import {
  constants,
  createCipheriv,
  generateKeyPairSync,
  publicEncrypt,
  randomBytes,
  verify,
} from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytes, expectCode, grpc, type Harness, newKeyRing, startHarness } from './gcp-support.js';

// Wraps key material the way the ImportCryptoKeyVersion reference describes.
function wrapRsaAes(pem: string, material: Buffer): Buffer {
  const ephemeral = randomBytes(32);
  const rsa = publicEncrypt(
    { key: pem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
    ephemeral,
  );
  const kwp = createCipheriv('id-aes256-wrap-pad', ephemeral, Buffer.from('a65959a6', 'hex'));
  return Buffer.concat([rsa, kwp.update(material), kwp.final()]);
}

describe('Cloud KMS server: import jobs', () => {
  let h: Harness;
  let ring: string;
  beforeAll(async () => {
    h = await startHarness();
    ring = await newKeyRing(h.client);
  });
  afterAll(async () => {
    await h.close();
  });

  async function activeJob(id: string, importMethod: string, protectionLevel = 'SOFTWARE') {
    const [job] = await h.client.createImportJob({
      parent: ring,
      importJobId: id,
      importJob: {
        importMethod: importMethod as 'RSA_OAEP_3072_SHA256',
        protectionLevel: protectionLevel as 'SOFTWARE',
      },
    });
    expect(job.state).toBe('PENDING_GENERATION');
    for (let i = 0; i < 200; i++) {
      const [polled] = await h.client.getImportJob({ name: job.name! });
      if (polled.state === 'ACTIVE') return polled;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('import job never became ACTIVE');
  }

  it('imports an AES key wrapped with RSA_OAEP_3072_SHA256_AES_256 and uses it', async () => {
    const job = await activeJob('job-aes', 'RSA_OAEP_3072_SHA256_AES_256');
    expect(job.publicKey?.pem).toContain('BEGIN PUBLIC KEY');
    const [key] = await h.client.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'imported-sym',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT', importOnly: true },
      skipInitialVersionCreation: true,
    });
    await expectCode(
      h.client.createCryptoKeyVersion({ parent: key.name!, cryptoKeyVersion: {} }),
      grpc.status.FAILED_PRECONDITION,
    );
    const [version] = await h.client.importCryptoKeyVersion({
      parent: key.name!,
      importJob: job.name!,
      algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION',
      wrappedKey: wrapRsaAes(job.publicKey!.pem!, randomBytes(32)),
    });
    expect(version.state).toBe('ENABLED');
    expect(version.importJob).toBe(job.name);
    const [enc] = await h.client.encrypt({ name: key.name!, plaintext: Buffer.from('imported') });
    const [dec] = await h.client.decrypt({ name: key.name!, ciphertext: bytes(enc.ciphertext) });
    expect(Buffer.from(dec.plaintext as Uint8Array).toString()).toBe('imported');
  });

  it('imports a PKCS#8 EC key with RSA_OAEP_4096_SHA256_AES_256 and signs with it', async () => {
    const job = await activeJob('job-ec', 'RSA_OAEP_4096_SHA256_AES_256');
    const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const [key] = await h.client.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'imported-ec',
      cryptoKey: {
        purpose: 'ASYMMETRIC_SIGN',
        versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256' },
        importOnly: true,
      },
      skipInitialVersionCreation: true,
    });
    const [version] = await h.client.importCryptoKeyVersion({
      parent: key.name!,
      importJob: job.name!,
      algorithm: 'EC_SIGN_P256_SHA256',
      rsaAesWrappedKey: wrapRsaAes(
        job.publicKey!.pem!,
        pair.privateKey.export({ type: 'pkcs8', format: 'der' }),
      ),
    });
    const [sig] = await h.client.asymmetricSign({ name: version.name!, data: Buffer.from('hi') });
    expect(
      verify('sha256', Buffer.from('hi'), pair.publicKey, Buffer.from(sig.signature as Uint8Array)),
    ).toBe(true);
  });

  it('imports with plain RSA_OAEP_3072_SHA256 and refuses what the reference refuses', async () => {
    const job = await activeJob('job-plain', 'RSA_OAEP_3072_SHA256');
    const [key] = await h.client.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'imported-mac',
      cryptoKey: { purpose: 'MAC', versionTemplate: { algorithm: 'HMAC_SHA256' }, importOnly: true },
      skipInitialVersionCreation: true,
    });
    const material = randomBytes(32);
    const wrapped = publicEncrypt(
      { key: job.publicKey!.pem!, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      material,
    );
    const [version] = await h.client.importCryptoKeyVersion({
      parent: key.name!,
      importJob: job.name!,
      algorithm: 'HMAC_SHA256',
      wrappedKey: wrapped,
    });
    const [mac] = await h.client.macSign({ name: version.name!, data: Buffer.from('d') });
    const { createHmac } = await import('node:crypto');
    expect(Buffer.from(mac.mac as Uint8Array)).toEqual(createHmac('sha256', material).update('d').digest());
    // Wrong algorithm for the purpose, garbage wrapping, both/neither wrapped fields.
    await expectCode(
      h.client.importCryptoKeyVersion({
        parent: key.name!,
        importJob: job.name!,
        algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION',
        wrappedKey: wrapped,
      }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(
      h.client.importCryptoKeyVersion({
        parent: key.name!,
        importJob: job.name!,
        algorithm: 'HMAC_SHA256',
        wrappedKey: randomBytes(384),
      }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(
      h.client.importCryptoKeyVersion({ parent: key.name!, importJob: job.name!, algorithm: 'HMAC_SHA256' }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(
      h.client.createImportJob({
        parent: ring,
        importJobId: 'job-plain',
        importJob: { importMethod: 'RSA_OAEP_3072_SHA256', protectionLevel: 'SOFTWARE' },
      }),
      grpc.status.ALREADY_EXISTS,
    );
    await expectCode(
      h.client.createImportJob({
        parent: ring,
        importJobId: 'job-none',
        importJob: { protectionLevel: 'SOFTWARE' },
      }),
      grpc.status.INVALID_ARGUMENT,
    );
    const [jobs] = await h.client.listImportJobs({ parent: ring });
    expect(jobs.map((j) => j.name?.split('/').pop())).toEqual(['job-aes', 'job-ec', 'job-plain']);
    // Import jobs expire after three days; an expired job cannot be used.
    h.server.clock.advance(3 * 86_400_000 + 1000);
    const [expired] = await h.client.getImportJob({ name: job.name! });
    expect(expired.state).toBe('EXPIRED');
    await expectCode(
      h.client.importCryptoKeyVersion({
        parent: key.name!,
        importJob: job.name!,
        algorithm: 'HMAC_SHA256',
        wrappedKey: wrapped,
      }),
      grpc.status.FAILED_PRECONDITION,
    );
    await expectCode(h.client.getImportJob({ name: `${ring}/importJobs/absent` }), grpc.status.NOT_FOUND);
  });
});

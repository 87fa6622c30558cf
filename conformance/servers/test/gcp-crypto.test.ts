import { constants, createHash, createHmac, createPublicKey, publicEncrypt, verify } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32c } from '../src/gcp/index.js';
import { bytes, expectCode, grpc, type Harness, newKeyRing, startHarness } from './gcp-support.js';

describe('Cloud KMS server: cryptographic operations', () => {
  let h: Harness;
  let ring: string;
  const make = async (
    id: string,
    purpose: 'ENCRYPT_DECRYPT' | 'ASYMMETRIC_SIGN' | 'ASYMMETRIC_DECRYPT' | 'MAC',
    algorithm?: string,
  ) => {
    const [k] = await h.client.createCryptoKey({
      parent: ring,
      cryptoKeyId: id,
      cryptoKey: {
        purpose,
        ...(algorithm && { versionTemplate: { algorithm: algorithm as 'HMAC_SHA256' } }),
      },
    });
    return k.name!;
  };
  beforeAll(async () => {
    h = await startHarness();
    ring = await newKeyRing(h.client);
  });
  afterAll(async () => {
    await h.close();
  });

  it('crc32c matches the published check value', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it('encrypts and decrypts with AAD, verifying and returning checksums', async () => {
    const key = await make('aead', 'ENCRYPT_DECRYPT');
    const plaintext = Buffer.from('attack at dawn');
    const aad = Buffer.from('context');
    const [enc] = await h.client.encrypt({
      name: key,
      plaintext,
      additionalAuthenticatedData: aad,
      plaintextCrc32c: { value: crc32c(plaintext) },
      additionalAuthenticatedDataCrc32c: { value: crc32c(aad) },
    });
    expect(enc.name).toBe(`${key}/cryptoKeyVersions/1`);
    expect(enc.verifiedPlaintextCrc32c).toBe(true);
    expect(enc.verifiedAdditionalAuthenticatedDataCrc32c).toBe(true);
    const ciphertext = Buffer.from(enc.ciphertext as Uint8Array);
    expect(Number(enc.ciphertextCrc32c?.value)).toBe(crc32c(ciphertext));
    expect(ciphertext.includes(plaintext)).toBe(false);
    const [dec] = await h.client.decrypt({
      name: key,
      ciphertext,
      additionalAuthenticatedData: aad,
      ciphertextCrc32c: { value: crc32c(ciphertext) },
    });
    expect(Buffer.from(dec.plaintext as Uint8Array)).toEqual(plaintext);
    expect(Number(dec.plaintextCrc32c?.value)).toBe(crc32c(plaintext));
    expect(dec.usedPrimary).toBe(true);
    await expectCode(
      h.client.decrypt({ name: key, ciphertext, additionalAuthenticatedData: Buffer.from('other') }),
      grpc.status.INVALID_ARGUMENT,
    );
    const tampered = Buffer.from(ciphertext);
    tampered.writeUInt8(tampered.readUInt8(tampered.length - 1) ^ 1, tampered.length - 1);
    await expectCode(
      h.client.decrypt({ name: key, ciphertext: tampered, additionalAuthenticatedData: aad }),
      grpc.status.INVALID_ARGUMENT,
    );
    const other = await make('aead-other', 'ENCRYPT_DECRYPT');
    await expectCode(
      h.client.decrypt({ name: other, ciphertext, additionalAuthenticatedData: aad }),
      grpc.status.INVALID_ARGUMENT,
    );
  });

  it('rejects bad checksums, empty or oversized input with INVALID_ARGUMENT', async () => {
    const key = `${ring}/cryptoKeys/aead`;
    const pt = Buffer.from('x');
    await expectCode(
      h.client.encrypt({ name: key, plaintext: pt, plaintextCrc32c: { value: crc32c(pt) ^ 1 } }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(
      h.client.encrypt({
        name: key,
        plaintext: pt,
        additionalAuthenticatedData: pt,
        additionalAuthenticatedDataCrc32c: { value: 7 },
      }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(
      h.client.encrypt({ name: key, plaintext: Buffer.alloc(0) }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(
      h.client.encrypt({ name: key, plaintext: Buffer.alloc(64 * 1024 + 1) }),
      grpc.status.INVALID_ARGUMENT,
    );
    const [enc] = await h.client.encrypt({ name: key, plaintext: pt });
    await expectCode(
      h.client.decrypt({ name: key, ciphertext: bytes(enc.ciphertext), ciphertextCrc32c: { value: 1 } }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(
      h.client.decrypt({ name: key, ciphertext: Buffer.from('not ours') }),
      grpc.status.INVALID_ARGUMENT,
    );
  });

  it('decrypts old ciphertexts after rotation; the ciphertext names its version', async () => {
    const key = await make('rotate', 'ENCRYPT_DECRYPT');
    const [old] = await h.client.encrypt({ name: key, plaintext: Buffer.from('v1') });
    await h.client.createCryptoKeyVersion({ parent: key, cryptoKeyVersion: {} });
    await h.client.updateCryptoKeyPrimaryVersion({ name: key, cryptoKeyVersionId: '2' });
    const [fresh] = await h.client.encrypt({ name: key, plaintext: Buffer.from('v2') });
    expect(fresh.name).toBe(`${key}/cryptoKeyVersions/2`);
    const [a] = await h.client.decrypt({ name: key, ciphertext: bytes(old.ciphertext) });
    expect(Buffer.from(a.plaintext as Uint8Array).toString()).toBe('v1');
    expect(a.usedPrimary).toBe(false);
    const [pinned] = await h.client.encrypt({
      name: `${key}/cryptoKeyVersions/1`,
      plaintext: Buffer.from('pin'),
    });
    expect(pinned.name).toBe(`${key}/cryptoKeyVersions/1`);
    // Disabled and destroyed versions refuse with FAILED_PRECONDITION.
    await h.client.updateCryptoKeyVersion({
      cryptoKeyVersion: { name: `${key}/cryptoKeyVersions/1`, state: 'DISABLED' },
      updateMask: { paths: ['state'] },
    });
    await expectCode(
      h.client.decrypt({ name: key, ciphertext: bytes(old.ciphertext) }),
      grpc.status.FAILED_PRECONDITION,
    );
    await h.client.destroyCryptoKeyVersion({ name: `${key}/cryptoKeyVersions/2` });
    await expectCode(
      h.client.encrypt({ name: key, plaintext: Buffer.from('x') }),
      grpc.status.FAILED_PRECONDITION,
    );
    await expectCode(
      h.client.decrypt({ name: key, ciphertext: bytes(fresh.ciphertext) }),
      grpc.status.FAILED_PRECONDITION,
    );
  });

  it('refuses the wrong purpose with FAILED_PRECONDITION and a key without versions likewise', async () => {
    const mac = await make('mac-wrong', 'MAC', 'HMAC_SHA256');
    await expectCode(
      h.client.encrypt({ name: mac, plaintext: Buffer.from('x') }),
      grpc.status.FAILED_PRECONDITION,
    );
    await expectCode(
      h.client.asymmetricSign({ name: `${mac}/cryptoKeyVersions/1`, digest: { sha256: Buffer.alloc(32) } }),
      grpc.status.FAILED_PRECONDITION,
    );
    await expectCode(
      h.client.getPublicKey({ name: `${mac}/cryptoKeyVersions/1` }),
      grpc.status.FAILED_PRECONDITION,
    );
    await expectCode(
      h.client.encrypt({ name: `${ring}/cryptoKeys/missing`, plaintext: Buffer.from('x') }),
      grpc.status.NOT_FOUND,
    );
  });

  it('signs digests and data with EC, RSA-PSS, RSA-PKCS1 and Ed25519; GetPublicKey verifies them', async () => {
    const data = Buffer.from('message to sign');
    const cases = [
      ['ec256', 'EC_SIGN_P256_SHA256', 'sha256', {}],
      ['ec384', 'EC_SIGN_P384_SHA384', 'sha384', {}],
      [
        'pss',
        'RSA_SIGN_PSS_2048_SHA256',
        'sha256',
        { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
      ],
      ['pkcs1', 'RSA_SIGN_PKCS1_2048_SHA256', 'sha256', { padding: constants.RSA_PKCS1_PADDING }],
    ] as const;
    for (const [id, algorithm, hash, padding] of cases) {
      const key = await make(id, 'ASYMMETRIC_SIGN', algorithm);
      const name = `${key}/cryptoKeyVersions/1`;
      const [pub] = await h.client.getPublicKey({ name });
      expect(pub.algorithm).toBe(algorithm);
      expect(Number(pub.pemCrc32c?.value)).toBe(crc32c(Buffer.from(pub.pem!)));
      const digest = createHash(hash).update(data).digest();
      const [byDigest] = await h.client.asymmetricSign({
        name,
        digest: { [hash]: digest },
        digestCrc32c: { value: crc32c(digest) },
      });
      expect(byDigest.verifiedDigestCrc32c).toBe(true);
      expect(byDigest.name).toBe(name);
      const sig = Buffer.from(byDigest.signature as Uint8Array);
      expect(Number(byDigest.signatureCrc32c?.value)).toBe(crc32c(sig));
      expect(verify(hash, data, { key: pub.pem!, ...padding }, sig), `${id} digest`).toBe(true);
      const [byData] = await h.client.asymmetricSign({ name, data, dataCrc32c: { value: crc32c(data) } });
      expect(byData.verifiedDataCrc32c).toBe(true);
      expect(
        verify(hash, data, { key: pub.pem!, ...padding }, Buffer.from(byData.signature as Uint8Array)),
        `${id} data`,
      ).toBe(true);
      const wrongHash = hash === 'sha256' ? { sha384: Buffer.alloc(48) } : { sha256: Buffer.alloc(32) };
      await expectCode(h.client.asymmetricSign({ name, digest: wrongHash }), grpc.status.INVALID_ARGUMENT);
      await expectCode(
        h.client.asymmetricSign({ name, digest: { [hash]: Buffer.alloc(5) } }),
        grpc.status.INVALID_ARGUMENT,
      );
      await expectCode(
        h.client.asymmetricSign({ name, digest: { [hash]: digest }, digestCrc32c: { value: 1 } }),
        grpc.status.INVALID_ARGUMENT,
      );
    }
    const ed = await make('ed', 'ASYMMETRIC_SIGN', 'EC_SIGN_ED25519');
    const [edPub] = await h.client.getPublicKey({ name: `${ed}/cryptoKeyVersions/1` });
    const [edSig] = await h.client.asymmetricSign({ name: `${ed}/cryptoKeyVersions/1`, data });
    expect(verify(null, data, edPub.pem!, Buffer.from(edSig.signature as Uint8Array))).toBe(true);
    await expectCode(
      h.client.asymmetricSign({ name: `${ed}/cryptoKeyVersions/1`, digest: { sha256: Buffer.alloc(32) } }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(
      h.client.asymmetricSign({ name: `${ed}/cryptoKeyVersions/1` }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(h.client.asymmetricSign({ name: ed, data }), grpc.status.INVALID_ARGUMENT);
  });

  it('decrypts RSA-OAEP-SHA256 made with the public key', async () => {
    const key = await make('oaep', 'ASYMMETRIC_DECRYPT', 'RSA_DECRYPT_OAEP_2048_SHA256');
    const name = `${key}/cryptoKeyVersions/1`;
    const [pub] = await h.client.getPublicKey({ name, publicKeyFormat: 'DER' });
    expect(pub.publicKeyFormat).toBe('DER');
    const der = Buffer.from(pub.publicKey?.data as Uint8Array);
    expect(Number(pub.publicKey?.crc32cChecksum?.value)).toBe(crc32c(der));
    const ciphertext = publicEncrypt(
      {
        key: createPublicKey({ key: der, format: 'der', type: 'spki' }),
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash: 'sha256',
      },
      Buffer.from('secret'),
    );
    const [dec] = await h.client.asymmetricDecrypt({
      name,
      ciphertext,
      ciphertextCrc32c: { value: crc32c(ciphertext) },
    });
    expect(Buffer.from(dec.plaintext as Uint8Array).toString()).toBe('secret');
    expect(dec.verifiedCiphertextCrc32c).toBe(true);
    await expectCode(
      h.client.asymmetricDecrypt({ name, ciphertext: Buffer.alloc(256, 1) }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(
      h.client.asymmetricDecrypt({ name, ciphertext, ciphertextCrc32c: { value: 3 } }),
      grpc.status.INVALID_ARGUMENT,
    );
  });

  it('signs and verifies MACs', async () => {
    const key = await make('hmac', 'MAC', 'HMAC_SHA256');
    const name = `${key}/cryptoKeyVersions/1`;
    const data = Buffer.from('mac me');
    const [signed] = await h.client.macSign({ name, data, dataCrc32c: { value: crc32c(data) } });
    const mac = Buffer.from(signed.mac as Uint8Array);
    expect(mac).toHaveLength(32);
    expect(signed.verifiedDataCrc32c).toBe(true);
    expect(Number(signed.macCrc32c?.value)).toBe(crc32c(mac));
    const [ok] = await h.client.macVerify({ name, data, mac, macCrc32c: { value: crc32c(mac) } });
    expect(ok.success).toBe(true);
    expect(ok.verifiedMacCrc32c).toBe(true);
    expect(ok.verifiedSuccessIntegrity).toBe(true);
    const [bad] = await h.client.macVerify({ name, data: Buffer.from('other'), mac });
    expect(bad.success).toBe(false);
    // The key is secret: a MAC made with a guessed key does not verify.
    const [guess] = await h.client.macVerify({
      name,
      data,
      mac: createHmac('sha256', Buffer.alloc(32)).update(data).digest(),
    });
    expect(guess.success).toBe(false);
    await expectCode(
      h.client.macSign({ name, data, dataCrc32c: { value: 5 } }),
      grpc.status.INVALID_ARGUMENT,
    );
  });

  it('generates random bytes at HSM protection level only, 8 to 1024 bytes', async () => {
    const location = ring.replace(/\/keyRings\/.*$/, '');
    const [r] = await h.client.generateRandomBytes({ location, lengthBytes: 32, protectionLevel: 'HSM' });
    const data = Buffer.from(r.data as Uint8Array);
    expect(data).toHaveLength(32);
    expect(Number(r.dataCrc32c?.value)).toBe(crc32c(data));
    await expectCode(
      h.client.generateRandomBytes({ location, lengthBytes: 4, protectionLevel: 'HSM' }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(
      h.client.generateRandomBytes({ location, lengthBytes: 2048, protectionLevel: 'HSM' }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(
      h.client.generateRandomBytes({ location, lengthBytes: 32, protectionLevel: 'SOFTWARE' }),
      grpc.status.INVALID_ARGUMENT,
    );
  });
});

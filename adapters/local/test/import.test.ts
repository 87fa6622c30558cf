import {
  constants,
  createCipheriv,
  createDecipheriv,
  createPublicKey,
  generateKeyPairSync,
  verify as nodeVerify,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import { encodeContext, FRAME_MECHANISMS, readFrame, splitGcmBody } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { bytes, expectCode, FakeClock, newKeystore, o, open, text } from './helpers.js';

function wrap(spki: Uint8Array, material: Uint8Array, oaepHash: 'sha256' | 'sha1' = 'sha256'): Uint8Array {
  const key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  return publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, material);
}

async function externalKey(spec: 'AES_256' | 'HMAC_256' | 'EC_P256' = 'AES_256') {
  const clock = new FakeClock();
  const { kp } = await newKeystore({ clock: clock.now });
  const key = await kp.createKey({ name: 'byok', spec, external: true }, o);
  return { kp, clock, key, ref: { uri: key.uri } };
}

describe('import (BYOK)', () => {
  it('an external key waits in pending_import and refuses use', async () => {
    const { kp, key, ref } = await externalKey();
    expect(key).toMatchObject({
      state: 'pending_import',
      origin: 'external',
      versions: [{ version: '1', state: 'pending_import' }],
    });
    expect(key.primaryVersion).toBeUndefined();
    await expectCode(kp.encrypt(ref, bytes('x'), {}, o), 'KeyStateConflict');
    await expectCode(kp.enableKey(ref, o), 'KeyStateConflict');
    await expectCode(kp.rotateKey(ref, o), 'Unsupported');
  });

  it('imports AES material; the provider ciphertext opens with the known key per the documented format', async () => {
    const { kp, ref } = await externalKey();
    const params = await kp.getImportParameters(ref, {}, o);
    expect(params.algorithm).toBe('RSAES_OAEP_SHA_256');
    expect(params.expiresAt).toEqual(new Date('2030-01-02T00:00:00.000Z'));
    const wrappingKey = createPublicKey({
      key: Buffer.from(params.wrappingPublicKey),
      format: 'der',
      type: 'spki',
    });
    expect(wrappingKey.asymmetricKeyDetails?.modulusLength).toBe(3072);
    const material = randomBytes(32);
    const info = await kp.importKeyMaterial(
      ref,
      {
        wrappedMaterial: wrap(params.wrappingPublicKey, material),
        algorithm: 'RSAES_OAEP_SHA_256',
        importToken: params.importToken as Uint8Array,
      },
      o,
    );
    expect(info).toMatchObject({ state: 'enabled', primaryVersion: '1', origin: 'external' });

    // provider -> node:crypto: keyport frame (AES_256_GCM, version 1) | iv | ct | tag, AAD = encodeContext(context)
    const context = { purpose: 'byok-test' };
    const { ciphertext } = await kp.encrypt(ref, bytes('sealed by keyport'), { context }, o);
    const frame = readFrame(ciphertext);
    expect([frame.mechanism, frame.keyVersion]).toEqual([FRAME_MECHANISMS.AES_256_GCM, '1']);
    const gcm = splitGcmBody(frame.body);
    const decipher = createDecipheriv('aes-256-gcm', material, gcm.iv);
    decipher.setAAD(encodeContext(context));
    decipher.setAuthTag(gcm.tag);
    expect(Buffer.concat([decipher.update(gcm.ciphertext), decipher.final()]).toString()).toBe(
      'sealed by keyport',
    );

    // node:crypto -> provider
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', material, iv);
    cipher.setAAD(encodeContext(context));
    const body = Buffer.concat([cipher.update('sealed outside'), cipher.final()]);
    const framed = Buffer.concat([Buffer.from([1, 0, 0, 0, 1]), iv, body, cipher.getAuthTag()]);
    expect(text((await kp.decrypt(ref, framed, { context }, o)).plaintext)).toBe('sealed outside');
  });

  it('imports an EC P-256 private key (PKCS#8) and signs with it', async () => {
    const { kp, ref } = await externalKey('EC_P256');
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const params = await kp.getImportParameters(ref, { algorithm: 'RSAES_OAEP_SHA_256' }, o);
    const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
    await kp.importKeyMaterial(
      ref,
      {
        wrappedMaterial: wrap(params.wrappingPublicKey, pkcs8),
        algorithm: 'RSAES_OAEP_SHA_256',
        importToken: params.importToken as Uint8Array,
      },
      o,
    );
    const sig = await kp.sign(ref, bytes('m'), {}, o);
    expect(nodeVerify('sha256', bytes('m'), publicKey, sig.signature)).toBe(true);
  });

  it('checks the token, its expiry, the wrapping and the material', async () => {
    const { kp, ref, clock } = await externalKey();
    const req = (wrapped: Uint8Array, token: Uint8Array) => ({
      wrappedMaterial: wrapped,
      algorithm: 'RSAES_OAEP_SHA_256' as const,
      importToken: token,
    });
    await expectCode(
      kp.importKeyMaterial(ref, req(new Uint8Array(384), new Uint8Array(32)), o),
      'KeyStateConflict',
    );
    const p1 = await kp.getImportParameters(ref, {}, o);
    const token1 = p1.importToken as Uint8Array;
    const good = wrap(p1.wrappingPublicKey, randomBytes(32));
    await expectCode(kp.importKeyMaterial(ref, req(good, randomBytes(32)), o), 'InvalidArgument');
    await expectCode(
      kp.importKeyMaterial(ref, { wrappedMaterial: good, algorithm: 'RSAES_OAEP_SHA_256' }, o),
      'InvalidArgument',
    );
    await expectCode(kp.importKeyMaterial(ref, req(randomBytes(384), token1), o), 'InvalidCiphertext');
    await expectCode(
      kp.importKeyMaterial(ref, req(wrap(p1.wrappingPublicKey, randomBytes(16)), token1), o),
      'InvalidArgument',
    );
    // parameters issued for SHA-256 do not take material declared as SHA-1
    await expectCode(
      kp.importKeyMaterial(ref, { ...req(good, token1), algorithm: 'RSAES_OAEP_SHA_1' }, o),
      'InvalidArgument',
    );
    await expectCode(
      kp.importKeyMaterial(ref, { ...req(good, token1), algorithm: 'RSA_AES_KEY_WRAP_SHA_1' }, o),
      'Unsupported',
    );
    await expectCode(
      kp.getImportParameters(ref, { algorithm: 'RSA_AES_KEY_WRAP_SHA_256' }, o),
      'Unsupported',
    );
    // new parameters replace the old token
    const p2 = await kp.getImportParameters(ref, {}, o);
    await expectCode(kp.importKeyMaterial(ref, req(good, token1), o), 'InvalidArgument');
    clock.advanceMs(24 * 3_600_000);
    await expectCode(
      kp.importKeyMaterial(
        ref,
        req(wrap(p2.wrappingPublicKey, randomBytes(32)), p2.importToken as Uint8Array),
        o,
      ),
      'InvalidArgument',
    );
    const p3 = await kp.getImportParameters(ref, {}, o);
    const info = await kp.importKeyMaterial(
      ref,
      req(wrap(p3.wrappingPublicKey, randomBytes(32)), p3.importToken as Uint8Array),
      o,
    );
    expect(info.state).toBe('enabled');
    await expectCode(kp.getImportParameters(ref, {}, o), 'KeyStateConflict');
  });

  it('refuses import for provider-generated keys and for RSA specs', async () => {
    const { kp } = await externalKey();
    const own = await kp.createKey({ name: 'own', spec: 'AES_256' }, o);
    await expectCode(kp.getImportParameters({ uri: own.uri }, {}, o), 'InvalidArgument');
    await expectCode(kp.createKey({ name: 'rsa', spec: 'RSA_2048', external: true }, o), 'Unsupported');
    await expectCode(
      kp.createKey({ name: 'rot', spec: 'AES_256', external: true, rotation: { periodDays: 5 } }, o),
      'Unsupported',
    );
  });
});

describe('import with RSAES_OAEP_SHA_1 (what SoftHSM2 2.6.1 can wrap with)', () => {
  it('parameters issued for SHA-1 take material wrapped with OAEP-SHA1; the key is that material', async () => {
    const { kp, ref } = await externalKey();
    const params = await kp.getImportParameters(ref, { algorithm: 'RSAES_OAEP_SHA_1' }, o);
    expect(params.algorithm).toBe('RSAES_OAEP_SHA_1');
    const material = randomBytes(32);
    const info = await kp.importKeyMaterial(
      ref,
      {
        wrappedMaterial: wrap(params.wrappingPublicKey, material, 'sha1'),
        algorithm: 'RSAES_OAEP_SHA_1',
        importToken: params.importToken as Uint8Array,
      },
      o,
    );
    expect(info).toMatchObject({ state: 'enabled', primaryVersion: '1', origin: 'external' });

    // node:crypto -> provider and provider -> node:crypto, AAD = encodeContext(context)
    const context = { tenant: 'acme' };
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', material, iv);
    cipher.setAAD(encodeContext(context));
    const body = Buffer.concat([cipher.update('sealed outside'), cipher.final()]);
    const framed = Buffer.concat([Buffer.from([1, 0, 0, 0, 1]), iv, body, cipher.getAuthTag()]);
    expect(text((await kp.decrypt(ref, framed, { context }, o)).plaintext)).toBe('sealed outside');
    const gcm = splitGcmBody(
      readFrame((await kp.encrypt(ref, bytes('sealed inside'), { context }, o)).ciphertext).body,
    );
    const decipher = createDecipheriv('aes-256-gcm', material, gcm.iv);
    decipher.setAAD(encodeContext(context));
    decipher.setAuthTag(gcm.tag);
    expect(Buffer.concat([decipher.update(gcm.ciphertext), decipher.final()]).toString()).toBe(
      'sealed inside',
    );
  });

  it('the algorithm is part of the stored import job: a mismatch is refused, also after reopening', async () => {
    const clock = new FakeClock();
    const { kp, path } = await newKeystore({ clock: clock.now });
    const key = await kp.createKey({ name: 'byok', spec: 'AES_256', external: true }, o);
    const ref = { uri: key.uri };
    const params = await kp.getImportParameters(ref, { algorithm: 'RSAES_OAEP_SHA_1' }, o);
    const token = params.importToken as Uint8Array;
    await kp.close();

    const reopened = await open({ path, clock: clock.now });
    const material = randomBytes(32);
    // SHA-1 parameters, material declared SHA-256 (whatever its wrap): refused before unwrapping
    await expectCode(
      reopened.importKeyMaterial(
        ref,
        {
          wrappedMaterial: wrap(params.wrappingPublicKey, material),
          algorithm: 'RSAES_OAEP_SHA_256',
          importToken: token,
        },
        o,
      ),
      'InvalidArgument',
    );
    // declared SHA-1 but wrapped with OAEP-SHA256: does not unwrap
    await expectCode(
      reopened.importKeyMaterial(
        ref,
        {
          wrappedMaterial: wrap(params.wrappingPublicKey, material, 'sha256'),
          algorithm: 'RSAES_OAEP_SHA_1',
          importToken: token,
        },
        o,
      ),
      'InvalidCiphertext',
    );
    expect((await reopened.describeKey(ref, o)).state).toBe('pending_import');
    const info = await reopened.importKeyMaterial(
      ref,
      {
        wrappedMaterial: wrap(params.wrappingPublicKey, material, 'sha1'),
        algorithm: 'RSAES_OAEP_SHA_1',
        importToken: token,
      },
      o,
    );
    expect(info.state).toBe('enabled');
  });
});

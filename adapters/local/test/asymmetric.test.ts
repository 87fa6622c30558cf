import { constants, createPublicKey, verify as nodeVerify, publicEncrypt } from 'node:crypto';
import { encodeContext, FRAME_MECHANISMS, Keyport, type KeySpec, readFrame } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { bytes, expectCode, newKeystore, o, text } from './helpers.js';

describe('RSA-OAEP-SHA256 encrypt/decrypt and RSA-PSS-SHA256 sign', () => {
  // Key generation dominates (RSA-4096 takes seconds), so each size gets the usages it needs
  // for coverage: both at 2048, signing at 3072, encryption at 4096.
  for (const [spec, bits, usages] of [
    ['RSA_2048', 2048, ['encrypt_decrypt', 'sign_verify']],
    ['RSA_3072', 3072, ['sign_verify']],
    ['RSA_4096', 4096, ['encrypt_decrypt']],
  ] as const) {
    if ((usages as readonly string[]).includes('encrypt_decrypt')) {
      it(`${spec}: encrypts with the context as OAEP label and decrypts`, async () => {
        const { kp } = await newKeystore();
        const enc = await kp.createKey({ name: 'enc', spec, usage: 'encrypt_decrypt' }, o);
        const ref = { uri: enc.uri };
        const { ciphertext, keyVersion } = await kp.encrypt(
          ref,
          bytes('wrap me'),
          { context: { a: 'b' } },
          o,
        );
        expect(keyVersion).toBe('1');
        expect(readFrame(ciphertext).mechanism).toBe(FRAME_MECHANISMS.RSA_OAEP_SHA_256);
        expect(ciphertext.length).toBe(6 + bits / 8);
        expect(text((await kp.decrypt(ref, ciphertext, { context: { a: 'b' } }, o)).plaintext)).toBe(
          'wrap me',
        );
        await expectCode(kp.decrypt(ref, ciphertext, { context: { a: 'c' } }, o), 'InvalidCiphertext');
        await expectCode(kp.decrypt(ref, ciphertext, {}, o), 'InvalidCiphertext');
        const max = bits / 8 - 66;
        await kp.encrypt(ref, new Uint8Array(max), {}, o);
        await expectCode(kp.encrypt(ref, new Uint8Array(max + 1), {}, o), 'InvalidArgument');
        await expectCode(kp.sign(ref, bytes('m'), {}, o), 'InvalidArgument');

        // A ciphertext made outside with the public key and the documented format opens.
        const spki = await kp.getPublicKey(ref, o);
        const outside = publicEncrypt(
          {
            key: createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' }),
            padding: constants.RSA_PKCS1_OAEP_PADDING,
            oaepHash: 'sha256',
            oaepLabel: Buffer.from(encodeContext({ x: 'y' })),
          },
          bytes('from outside'),
        );
        const framed = Buffer.concat([Buffer.from([0x02, 0, 0, 0, 1]), outside]);
        expect(text((await kp.decrypt(ref, framed, { context: { x: 'y' } }, o)).plaintext)).toBe(
          'from outside',
        );
        const dk = await kp.generateDataKey(ref, { context: { x: 'y' } }, o);
        const opened = await kp.decrypt(ref, dk.wrapped, { context: { x: 'y' } }, o);
        expect(Buffer.from(opened.plaintext).equals(Buffer.from(dk.plaintext))).toBe(true);
      });
    }
    if ((usages as readonly string[]).includes('sign_verify')) {
      it(`${spec}: RSA-PSS-SHA256 signatures that node:crypto verifies`, async () => {
        const { kp } = await newKeystore();
        const signer = await kp.createKey({ name: 'sig', spec, usage: 'sign_verify' }, o);
        const sref = { uri: signer.uri };
        const message = bytes('signed message');
        const sig = await kp.sign(sref, message, {}, o);
        expect(sig.algorithm).toBe('RSASSA_PSS_SHA_256');
        expect(sig.signature.length).toBe(bits / 8);
        const algorithm = 'RSASSA_PSS_SHA_256';
        expect(await kp.verify(sref, message, sig.signature, { algorithm }, o)).toBe(true);
        expect(await kp.verify(sref, bytes('other message'), sig.signature, { algorithm }, o)).toBe(false);
        const pub = createPublicKey({
          key: Buffer.from(await kp.getPublicKey(sref, o)),
          format: 'der',
          type: 'spki',
        });
        const ok = nodeVerify(
          'sha256',
          message,
          { key: pub, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
          sig.signature,
        );
        expect(ok).toBe(true);
        await expectCode(kp.encrypt(sref, message, {}, o), 'InvalidArgument');
        // An algorithm of another key family: core's neutral rule (signingAlgorithmFor).
        await expectCode(kp.sign(sref, message, { algorithm: 'ECDSA_SHA_256' }, o), 'InvalidArgument');
      });
    }
  }

  it('refuses PKCS#1 v1.5 signing (not offered) and digest signing with Unsupported', async () => {
    const { kp } = await newKeystore();
    const key = await kp.createKey({ name: 'sig', spec: 'RSA_2048', usage: 'sign_verify' }, o);
    // Undeclared algorithms are refused by core before the driver is called.
    const keyport = new Keyport({ providers: [kp] });
    await expect(
      keyport.sign(key.uri, bytes('m'), { algorithm: 'RSASSA_PKCS1_V1_5_SHA_256' }),
    ).rejects.toMatchObject({ code: 'Unsupported', capability: 'signingAlgorithms' });
    await expectCode(
      kp.sign({ uri: key.uri }, new Uint8Array(32), { messageType: 'digest' }, o),
      'Unsupported',
    );
  });
});

describe('ECDSA', () => {
  for (const [spec, algorithm, hash] of [
    ['EC_P256', 'ECDSA_SHA_256', 'sha256'],
    ['EC_P384', 'ECDSA_SHA_384', 'sha384'],
  ] as const) {
    it(`${spec}: DER signatures that node:crypto verifies`, async () => {
      const { kp } = await newKeystore();
      const key = await kp.createKey({ name: 'ec', spec: spec as KeySpec }, o);
      expect(key.usage).toBe('sign_verify');
      const ref = { uri: key.uri };
      const message = bytes('hello ecdsa');
      const sig = await kp.sign(ref, message, { algorithm }, o);
      expect(sig.algorithm).toBe(algorithm);
      expect(sig.signature[0]).toBe(0x30); // DER SEQUENCE
      const pub = createPublicKey({
        key: Buffer.from(await kp.getPublicKey(ref, o)),
        format: 'der',
        type: 'spki',
      });
      expect(nodeVerify(hash, message, { key: pub, dsaEncoding: 'der' }, sig.signature)).toBe(true);
      expect(await kp.verify(ref, message, sig.signature, { algorithm }, o)).toBe(true);
      const bad = Uint8Array.from(sig.signature);
      bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1;
      expect(await kp.verify(ref, message, bad, { algorithm }, o)).toBe(false);
      expect(await kp.verify(ref, message, bytes('not DER'), { algorithm }, o)).toBe(false);
      const wrong = algorithm === 'ECDSA_SHA_256' ? 'ECDSA_SHA_384' : 'ECDSA_SHA_256';
      await expectCode(kp.sign(ref, message, { algorithm: wrong }, o), 'InvalidArgument');
      await expectCode(kp.encrypt(ref, message, {}, o), 'InvalidArgument');
    });
  }

  it('cannot create an EC key for encryption', async () => {
    const { kp } = await newKeystore();
    await expectCode(
      kp.createKey({ name: 'ec', spec: 'EC_P256', usage: 'encrypt_decrypt' }, o),
      'InvalidArgument',
    );
  });
});

describe('HMAC-SHA256', () => {
  it('macs and verifies in constant time; the tag is the HMAC of the message', async () => {
    const { kp } = await newKeystore();
    const key = await kp.createKey({ name: 'mac', spec: 'HMAC_256' }, o);
    const ref = { uri: key.uri };
    const { mac, keyVersion } = await kp.mac(ref, bytes('msg'), o);
    expect(mac.length).toBe(32);
    expect(keyVersion).toBe('1');
    expect(await kp.verifyMac(ref, bytes('msg'), mac, o)).toBe(true);
    expect(await kp.verifyMac(ref, bytes('msh'), mac, o)).toBe(false);
    expect(await kp.verifyMac(ref, bytes('msg'), mac.subarray(0, 31), o)).toBe(false);
    expect(Buffer.from((await kp.mac(ref, bytes('msg'), o)).mac).equals(Buffer.from(mac))).toBe(true);
    await expectCode(kp.sign(ref, bytes('msg'), {}, o), 'InvalidArgument');
    await expectCode(kp.getPublicKey(ref, o), 'InvalidArgument');
  });

  it('verifies an older tag when the version is pinned after rotation', async () => {
    const { kp } = await newKeystore();
    const key = await kp.createKey({ name: 'mac', spec: 'HMAC_256' }, o);
    const { mac } = await kp.mac({ uri: key.uri }, bytes('m'), o);
    await kp.rotateKey({ uri: key.uri }, o);
    expect(await kp.verifyMac({ uri: key.uri }, bytes('m'), mac, o)).toBe(false);
    expect(await kp.verifyMac({ uri: key.uri, version: '1' }, bytes('m'), mac, o)).toBe(true);
  });
});

/**
 * BYOK out of the token: an exportable AES key wrapped under a foreign RSA public key, opened
 * with node:crypto on the importing side, must be the material that decrypts the token's
 * ciphertexts — proving C_WrapKey exported the real key without it ever leaving in the clear.
 */
import {
  constants,
  createDecipheriv,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  privateDecrypt,
  randomBytes,
} from 'node:crypto';
import { encodeContext, FRAME_MECHANISMS, readFrame, splitGcmBody } from '@keyport/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pkcs11Provider } from '../src/index.js';
import { openProvider, signal, uniqueName } from './support.js';

const KWP_IV = Buffer.from('a65959a6', 'hex');

function openWith(material: Buffer, ciphertext: Uint8Array, context: Record<string, string>): Buffer {
  const frame = readFrame(ciphertext);
  if (frame.mechanism !== FRAME_MECHANISMS.AES_256_GCM) throw new Error('not an AES-GCM ciphertext');
  const gcm = splitGcmBody(frame.body);
  const decipher = createDecipheriv('aes-256-gcm', material, gcm.iv);
  decipher.setAAD(encodeContext(context));
  decipher.setAuthTag(gcm.tag);
  return Buffer.concat([decipher.update(gcm.ciphertext), decipher.final()]);
}

describe('wrapKeyForExport', () => {
  let provider: Pkcs11Provider;
  let importer: { publicKey: KeyObject; privateKey: KeyObject };
  let spki: Uint8Array;
  beforeAll(async () => {
    provider = await openProvider();
    importer = generateKeyPairSync('rsa', { modulusLength: 2048 });
    spki = importer.publicKey.export({ type: 'spki', format: 'der' });
  });
  afterAll(() => provider.close());

  const oaepOpen = (block: Uint8Array) =>
    privateDecrypt(
      { key: importer.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
      Buffer.from(block),
    );

  it('RSAES_OAEP_SHA_1: the importer unwraps the exact key material', async () => {
    const key = await provider.createKey(
      { name: uniqueName('export-oaep'), spec: 'AES_256', exportable: true },
      { signal: signal() },
    );
    const context = { purpose: 'byok' };
    const plaintext = randomBytes(50);
    const sealed = await provider.encrypt({ uri: key.uri }, plaintext, { context }, { signal: signal() });
    const wrapped = await provider.wrapKeyForExport(
      { uri: key.uri },
      { wrappingPublicKeySpki: spki, algorithm: 'RSAES_OAEP_SHA_1' },
    );
    const material = oaepOpen(wrapped);
    expect(material.length).toBe(32);
    expect(openWith(material, sealed.ciphertext, context).equals(plaintext)).toBe(true);
  });

  it('RSA_AES_KEY_WRAP_SHA_1: OAEP(ephemeral) || AES-KWP(material), as cloud KMS import expects', async () => {
    const key = await provider.createKey(
      { name: uniqueName('export-kwp'), spec: 'AES_256', exportable: true },
      { signal: signal() },
    );
    const sealed = await provider.encrypt({ uri: key.uri }, Buffer.from('hi'), {}, { signal: signal() });
    const wrapped = await provider.wrapKeyForExport(
      { uri: key.uri },
      { wrappingPublicKeySpki: spki, algorithm: 'RSA_AES_KEY_WRAP_SHA_1' },
    );
    const ephemeral = oaepOpen(wrapped.subarray(0, 256));
    const kwp = createDecipheriv('id-aes256-wrap-pad', ephemeral, KWP_IV);
    const material = Buffer.concat([kwp.update(wrapped.subarray(256)), kwp.final()]);
    expect(openWith(material, sealed.ciphertext, {}).toString()).toBe('hi');
  });

  it('a weak wrapping key (RSA-1024, exponent 1, even exponent) is refused before anything is wrapped', async () => {
    const key = await provider.createKey(
      { name: uniqueName('export-weak'), spec: 'AES_256', exportable: true },
      { signal: signal() },
    );
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    const n = importer.publicKey.export({ format: 'jwk' }).n as string;
    const withExponent = (e: number) =>
      createPublicKey({ key: { kty: 'RSA', n, e: Buffer.from([e]).toString('base64url') }, format: 'jwk' });
    for (const weak of [small, withExponent(1), withExponent(4)]) {
      await expect(
        provider.wrapKeyForExport(
          { uri: key.uri },
          {
            wrappingPublicKeySpki: weak.export({ type: 'spki', format: 'der' }),
            algorithm: 'RSAES_OAEP_SHA_1',
          },
        ),
      ).rejects.toMatchObject({
        code: 'InvalidArgument',
        message: expect.stringMatching(/at least 2048 bits/),
      });
    }
  });

  it('a key not created exportable cannot be wrapped out (KeyStateConflict); SHA-256 OAEP is refused on SoftHSM2', async () => {
    const key = await provider.createKey(
      { name: uniqueName('export-no'), spec: 'AES_256' },
      { signal: signal() },
    );
    const error = await provider
      .wrapKeyForExport({ uri: key.uri }, { wrappingPublicKeySpki: spki, algorithm: 'RSAES_OAEP_SHA_1' })
      .catch((e) => e);
    expect(error).toMatchObject({ code: 'KeyStateConflict' });
    expect(provider.oaepHashes).toEqual(['sha1']);
    await expect(
      provider.wrapKeyForExport(
        { uri: key.uri },
        { wrappingPublicKeySpki: spki, algorithm: 'RSAES_OAEP_SHA_256' },
      ),
    ).rejects.toMatchObject({ code: 'Unsupported' });
  });
});

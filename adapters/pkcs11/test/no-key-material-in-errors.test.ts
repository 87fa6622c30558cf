/**
 * No plaintext, data key or wrapping input in a failed call's error, over SoftHSM2: the thrown
 * KeyportError and everything reachable from it (own and hidden properties, symbols, the `cause`
 * chain down to pkcs11js's error, arrays, Maps, buffers) is searched for the secret in any
 * encoding (@keyport/conformance's findSecret). The failures are the token's own: CKR_ values of C_EncryptInit
 * on a key the token no longer lets encrypt, of C_Decrypt on a tampered ciphertext, of C_UnwrapKey
 * on material wrapped for another key, and of C_WrapKey.
 */
import { constants, createPublicKey, generateKeyPairSync, publicEncrypt, randomBytes } from 'node:crypto';
import { findSecret, reachableBytes } from '@keyport/conformance';
import { Keyport, KeyportError } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { resolveKey } from '../src/key-store.js';
import { P } from '../src/p11.js';
import { signal, uniqueName, useProvider } from './support.js';

const t = useProvider();
const o = () => ({ signal: signal() });

async function failure(run: () => Promise<unknown>): Promise<KeyportError> {
  const error = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KeyportError);
  return error as KeyportError;
}

/** Takes CKA_ENCRYPT off the key's version 1 secret, as a token admin (or a policy) may. */
async function forbidEncrypt(uri: string): Promise<void> {
  await t.onToken((session) => {
    const key = resolveKey(t.provider.p11, session, t.nameOf({ uri }), uri);
    const secret = key.versions.get(1)?.secret;
    if (secret === undefined) throw new Error('no secret object');
    t.provider.p11.C_SetAttributeValue(session, secret, [{ type: P.CKA_ENCRYPT, value: false }]);
  });
}

describe('a failed call carries no key material (SoftHSM2)', () => {
  it('encrypt refused by the token (CKR_KEY_FUNCTION_NOT_PERMITTED): no plaintext', async () => {
    const key = await t.provider.createKey({ name: uniqueName('leak-enc'), spec: 'AES_256' }, o());
    await forbidEncrypt(key.uri);
    const plaintext = randomBytes(48);
    const error = await failure(() => new Keyport({ providers: [t.provider] }).encrypt(key.uri, plaintext));
    expect(error.message).toMatch(/CKR_/);
    expect(findSecret(error, plaintext)).toEqual([]);
  });

  it('generateDataKey refused by the token after drawing the key: no data key', async () => {
    const key = await t.provider.createKey({ name: uniqueName('leak-dk'), spec: 'AES_256' }, o());
    await forbidEncrypt(key.uri);
    const error = await failure(() =>
      new Keyport({ providers: [t.provider] }).generateDataKey(key.uri, { bytes: 32 }),
    );
    expect(error.message).toMatch(/CKR_/);
    // The data key is the token's random: what the error reaches must hold no 32-byte buffer at all.
    expect(reachableBytes(error).filter((b) => b.length === 32)).toEqual([]);
  });

  it('decrypt of a tampered ciphertext: no plaintext', async () => {
    const key = await t.provider.createKey({ name: uniqueName('leak-dec'), spec: 'AES_256' }, o());
    const plaintext = randomBytes(48);
    const sealed = await t.provider.encrypt({ uri: key.uri }, plaintext, {}, o());
    const tampered = Buffer.from(sealed.ciphertext);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    const error = await failure(() => t.provider.decrypt({ uri: key.uri }, tampered, {}, o()));
    expect(error.code).toBe('InvalidCiphertext');
    expect(findSecret(error, plaintext)).toEqual([]);
  });

  it('importKeyMaterial of material wrapped for another key: no material', async () => {
    const key = await t.provider.createKey(
      { name: uniqueName('leak-imp'), spec: 'AES_256', external: true },
      o(),
    );
    await t.provider.getImportParameters({ uri: key.uri }, { algorithm: 'RSAES_OAEP_SHA_1' }, o());
    const material = randomBytes(32);
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    const wrapped = publicEncrypt(
      { key: other, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
      material,
    );
    const error = await failure(() =>
      t.provider.importKeyMaterial(
        { uri: key.uri },
        { algorithm: 'RSAES_OAEP_SHA_1', wrappedMaterial: wrapped },
        o(),
      ),
    );
    expect(error.code).toBe('InvalidCiphertext');
    expect(findSecret(error, material)).toEqual([]);
  });
});

/** An SPKI of an RSA public key with a `bits`-bit odd modulus (no private half needed to wrap). */
function rsaSpkiOf(bits: number): Uint8Array {
  const n = randomBytes(bits / 8);
  n[0] = (n[0] ?? 0) | 0x80;
  n[n.length - 1] = (n[n.length - 1] ?? 0) | 1;
  return createPublicKey({
    key: { kty: 'RSA', n: n.toString('base64url'), e: 'AQAB' },
    format: 'jwk',
  }).export({ type: 'spki', format: 'der' });
}

describe('wrapKeyForExport bounds the wrapping key as byok does (RSA-2048 to RSA-4096)', () => {
  it.each([4096 + 8, 8192, 16384, 32768])(
    'RSA-%i is InvalidArgument, before the token is asked',
    async (bits) => {
      const key = await t.provider.createKey(
        { name: uniqueName('export-big'), spec: 'AES_256', exportable: true },
        o(),
      );
      const error = await failure(() =>
        t.provider.wrapKeyForExport(
          { uri: key.uri },
          { wrappingPublicKeySpki: rsaSpkiOf(bits), algorithm: 'RSAES_OAEP_SHA_1' },
        ),
      );
      expect(error).toMatchObject({ code: 'InvalidArgument', message: expect.stringMatching(/RSA-4096/) });
    },
  );

  it('RSA-3072 and RSA-4096 still wrap', async () => {
    const key = await t.provider.createKey(
      { name: uniqueName('export-ok'), spec: 'AES_256', exportable: true },
      o(),
    );
    for (const bits of [3072, 4096]) {
      const wrapped = await t.provider.wrapKeyForExport(
        { uri: key.uri },
        { wrappingPublicKeySpki: rsaSpkiOf(bits), algorithm: 'RSAES_OAEP_SHA_1' },
      );
      expect(wrapped.length).toBe(bits / 8);
    }
  });

  it.each([
    ['empty', new Uint8Array(0)],
    ['garbage', randomBytes(300)],
    [
      'an EC key',
      generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }),
    ],
  ])('a wrapping key that is %s is InvalidArgument naming the key', async (_, spki) => {
    const key = await t.provider.createKey(
      { name: uniqueName('export-bad'), spec: 'AES_256', exportable: true },
      o(),
    );
    const error = await failure(() =>
      t.provider.wrapKeyForExport(
        { uri: key.uri },
        { wrappingPublicKeySpki: spki, algorithm: 'RSAES_OAEP_SHA_1' },
      ),
    );
    expect(error).toMatchObject({ code: 'InvalidArgument', keyUri: key.uri });
  });
});

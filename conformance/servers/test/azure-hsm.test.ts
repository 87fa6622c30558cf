import { createCipheriv, createDecipheriv } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AzureKeyVaultServer, startAzureKeyVaultServer } from '../src/azure/index.js';
import { ADMIN, CRYPTO_ONLY, cryptoClient, failure, keyClient, PRINCIPALS, READER } from './azure-helpers.js';

let hsm: AzureKeyVaultServer;
beforeAll(async () => {
  hsm = await startAzureKeyVaultServer({ mode: 'hsm', principals: PRINCIPALS });
});
afterAll(() => hsm?.stop());

// RFC 3394, section 4.1: 128-bit key data wrapped with a 128-bit KEK.
const KEK = Buffer.from('000102030405060708090A0B0C0D0E0F', 'hex');
const KEY_DATA = Buffer.from('00112233445566778899AABBCCDDEEFF', 'hex');
const WRAPPED = Buffer.from('1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5', 'hex');

describe('Managed HSM key types', () => {
  it('creates oct-HSM 128/192/256, RSA-HSM and EC-HSM keys; the secret is never shown', async () => {
    const client = keyClient(hsm, ADMIN);
    for (const keySize of [128, 192, 256]) {
      const key = await client.createOctKey(`oct-${keySize}`, { keySize, hsm: true });
      expect(key.keyType).toBe('oct-HSM');
      expect(key.key?.k).toBeUndefined();
      expect(key.keyOperations).toEqual(['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey']);
    }
    expect((await client.createRsaKey('rsa-hsm', { hsm: true })).keyType).toBe('RSA-HSM');
    expect((await client.createEcKey('ec-hsm', { hsm: true, curve: 'P-384' })).keyType).toBe('EC-HSM');
    expect(await failure(client.createOctKey('oct-bad', { keySize: 512, hsm: true }))).toMatchObject({
      status: 400,
    });
    // sign/verify are listed for AES keys, but no signature algorithm fits them.
    const signOnly = await client.createOctKey('oct-sign', { hsm: true, keyOps: ['sign'] });
    const crypto = cryptoClient(hsm, signOnly.id ?? '', CRYPTO_ONLY);
    expect(await failure(crypto.sign('RS256', Buffer.alloc(32)))).toMatchObject({
      status: 400,
      code: 'BadParameter',
    });
    expect(
      await failure(crypto.encrypt({ algorithm: 'A256GCM', plaintext: Buffer.from('x') })),
    ).toMatchObject({
      status: 403,
    });
    expect(await failure(client.createOctKey('oct-ec-op', { hsm: true, keyOps: ['import'] }))).toMatchObject({
      status: 400,
    });
  });
});

describe('AES on oct-HSM', () => {
  it('A*GCM: the service picks the iv, returns the tag, and authenticates aad', async () => {
    const client = keyClient(hsm, ADMIN);
    const k = Buffer.alloc(32, 3);
    const key = await client.importKey('aes-known', { kty: 'oct-HSM', k });
    const crypto = cryptoClient(hsm, key.id ?? '', CRYPTO_ONLY);
    const aad = Buffer.from('context');
    const enc = await crypto.encrypt({
      algorithm: 'A256GCM',
      plaintext: Buffer.from('gcm data'),
      additionalAuthenticatedData: aad,
    });
    expect(enc.iv?.length).toBe(12);
    expect(enc.authenticationTag?.length).toBe(16);
    // Standard AES-GCM: node decrypts what the server encrypted.
    const d = createDecipheriv('aes-256-gcm', k, enc.iv ?? new Uint8Array());
    d.setAAD(aad);
    d.setAuthTag(enc.authenticationTag ?? new Uint8Array());
    expect(Buffer.concat([d.update(enc.result), d.final()]).toString()).toBe('gcm data');
    const params = {
      algorithm: 'A256GCM',
      ciphertext: enc.result,
      iv: enc.iv ?? new Uint8Array(),
      authenticationTag: enc.authenticationTag ?? new Uint8Array(),
    } as const;
    const dec = await crypto.decrypt({ ...params, additionalAuthenticatedData: aad });
    expect(Buffer.from(dec.result).toString()).toBe('gcm data');
    expect(
      await failure(crypto.decrypt({ ...params, additionalAuthenticatedData: Buffer.from('other') })),
    ).toMatchObject({ status: 400, code: 'BadParameter' });
    expect(await failure(crypto.decrypt({ ...params, authenticationTag: Buffer.alloc(16) }))).toMatchObject({
      status: 400,
    });
    expect(
      await failure(crypto.encrypt({ algorithm: 'A128GCM', plaintext: Buffer.from('x') })),
    ).toMatchObject({ status: 400 });
    expect(
      await failure(crypto.encrypt({ algorithm: 'RSA-OAEP', plaintext: Buffer.from('x') })),
    ).toMatchObject({ status: 400 });
  });

  it('A*CBC and A*CBCPAD use the caller iv and match node:crypto', async () => {
    const client = keyClient(hsm, ADMIN);
    const k = Buffer.alloc(16, 5);
    const key = await client.importKey('aes-cbc', { kty: 'oct-HSM', k });
    const crypto = cryptoClient(hsm, key.id ?? '', CRYPTO_ONLY);
    const iv = Buffer.alloc(16, 1);
    const padded = await crypto.encrypt({
      algorithm: 'A128CBCPAD',
      plaintext: Buffer.from('not a block'),
      iv,
    });
    const c = createCipheriv('aes-128-cbc', k, iv);
    expect(Buffer.from(padded.result).equals(Buffer.concat([c.update('not a block'), c.final()]))).toBe(true);
    const back = await crypto.decrypt({ algorithm: 'A128CBCPAD', ciphertext: padded.result, iv });
    expect(Buffer.from(back.result).toString()).toBe('not a block');
    const block = Buffer.alloc(32, 8);
    const raw = await crypto.encrypt({ algorithm: 'A128CBC', plaintext: block, iv });
    expect(
      Buffer.from((await crypto.decrypt({ algorithm: 'A128CBC', ciphertext: raw.result, iv })).result).equals(
        block,
      ),
    ).toBe(true);
    expect(
      await failure(crypto.encrypt({ algorithm: 'A128CBC', plaintext: Buffer.from('short'), iv })),
    ).toMatchObject({ status: 400 });
    expect(await failure(crypto.encrypt({ algorithm: 'A128CBC', plaintext: block }))).toMatchObject({
      status: 400,
    });
  });

  it('A*KW wraps as RFC 3394', async () => {
    const key = await keyClient(hsm, ADMIN).importKey('kek', { kty: 'oct-HSM', k: KEK });
    const crypto = cryptoClient(hsm, key.id ?? '', CRYPTO_ONLY);
    const wrapped = await crypto.wrapKey('A128KW', KEY_DATA);
    expect(Buffer.from(wrapped.result).equals(WRAPPED)).toBe(true);
    expect(Buffer.from((await crypto.unwrapKey('A128KW', WRAPPED)).result).equals(KEY_DATA)).toBe(true);
    const tampered = Buffer.from(WRAPPED);
    tampered[3] = (tampered[3] ?? 0) ^ 1;
    expect(await failure(crypto.unwrapKey('A128KW', tampered))).toMatchObject({ status: 400 });
    expect(await failure(crypto.wrapKey('A256KW', KEY_DATA))).toMatchObject({ status: 400 });
  });
});

// RFC 5649, section 6: 20 octets wrapped with a 192-bit KEK.
const PAD_KEK = Buffer.from('5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8', 'hex');
const PAD_DATA = Buffer.from('c37b7e6492584340bed12207808941155068f738', 'hex');
const PAD_WRAPPED = Buffer.from('138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a', 'hex');

describe('CKM_AES_KEY_WRAP and CKM_AES_KEY_WRAP_PAD', () => {
  it('wrap as RFC 3394 and RFC 5649 with the key size of the key', async () => {
    const client = keyClient(hsm, ADMIN);
    const kek = await client.importKey('ckm-kek', { kty: 'oct-HSM', k: KEK });
    const plain = cryptoClient(hsm, kek.id ?? '', CRYPTO_ONLY);
    expect(Buffer.from((await plain.wrapKey('CKM_AES_KEY_WRAP', KEY_DATA)).result).equals(WRAPPED)).toBe(
      true,
    );
    const padKek = await client.importKey('ckm-pad-kek', { kty: 'oct-HSM', k: PAD_KEK });
    const padded = cryptoClient(hsm, padKek.id ?? '', CRYPTO_ONLY);
    const wrapped = await padded.wrapKey('CKM_AES_KEY_WRAP_PAD', PAD_DATA);
    expect(Buffer.from(wrapped.result).equals(PAD_WRAPPED)).toBe(true);
    expect(
      Buffer.from((await padded.unwrapKey('CKM_AES_KEY_WRAP_PAD', PAD_WRAPPED)).result).equals(PAD_DATA),
    ).toBe(true);
    expect(await failure(padded.wrapKey('CKM_AES_KEY_WRAP', PAD_DATA))).toMatchObject({ status: 400 });
  });
});

describe('random bytes (POST /rng)', () => {
  it('returns the requested count from a Managed HSM only', async () => {
    const client = keyClient(hsm, ADMIN);
    const a = await client.getRandomBytes(32);
    const b = await client.getRandomBytes(32);
    expect(a.length).toBe(32);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
    expect(await failure(client.getRandomBytes(0))).toMatchObject({ status: 400 });
    expect(await failure(client.getRandomBytes(129))).toMatchObject({ status: 400 });
    expect(await failure(keyClient(hsm, READER).getRandomBytes(8))).toMatchObject({ status: 403 });
    const vault = await startAzureKeyVaultServer({ principals: PRINCIPALS });
    try {
      expect(await failure(keyClient(vault, ADMIN).getRandomBytes(8))).toMatchObject({
        status: 400,
        code: 'BadParameter',
      });
    } finally {
      await vault.stop();
    }
  });
});

describe('features this server answers as a vault without them', () => {
  it('secure key release, exportable keys and the BYOK key-exchange key are 400', async () => {
    const client = keyClient(hsm, ADMIN);
    await client.createRsaKey('no-release', { hsm: true });
    expect(await failure(client.releaseKey('no-release', 'attestation-token'))).toMatchObject({
      status: 400,
      code: 'BadParameter',
    });
    expect(await failure(client.createRsaKey('exportable', { hsm: true, exportable: true }))).toMatchObject({
      status: 400,
    });
    expect(await failure(client.createRsaKey('kek', { hsm: true, keyOps: ['import'] }))).toMatchObject({
      status: 400,
    });
  });
});

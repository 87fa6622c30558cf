/**
 * BYOK with RSA_AES_KEY_WRAP_SHA_1 against OpenBao: the ephemeral AES key is wrapped with
 * RSA-OAEP over SHA-1 (what SoftHSM2 2.6.1's C_WrapKey can do) and the target key with AES-KWP;
 * the adapter sends `hash_function: SHA1`. The wrap is built here with node:crypto alone, not
 * with the adapter's helper, so the test checks the adapter against transit's documented format.
 */
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createPublicKey,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import { encodeContext } from '@keyport/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type VaultTransitProvider, wrapForImport } from '../src/index.js';
import { bytes, call, keyName, provider, rejection, text } from './helpers.js';

/** RFC 5649's alternative initial value, which `id-aes256-wrap-pad` needs spelled out. */
const KWP_IV = Buffer.from('a65959a6', 'hex');

/** OAEP-SHA1(ephemeral AES-256 key) || AES-KWP(ephemeral, material), from the SPKI wrapping key. */
function wrapSha1(wrappingPublicKey: Uint8Array, material: Uint8Array): Uint8Array {
  const ephemeral = randomBytes(32);
  const key = createPublicKey({ key: Buffer.from(wrappingPublicKey), format: 'der', type: 'spki' });
  const wrappedEphemeral = publicEncrypt(
    { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
    ephemeral,
  );
  const kwp = createCipheriv('id-aes256-wrap-pad', ephemeral, KWP_IV);
  return Buffer.concat([wrappedEphemeral, kwp.update(material), kwp.final()]);
}

/** vault:vN:base64(nonce12 || ct || tag16) with AAD = the context bytes the adapter sends. */
function openLocally(material: Uint8Array, ciphertext: Uint8Array, context: Record<string, string>): string {
  const [, version, body] = text(ciphertext).split(':');
  expect(version).toMatch(/^v[0-9]+$/);
  const raw = Buffer.from(body ?? '', 'base64');
  const decipher = createDecipheriv('aes-256-gcm', material, raw.subarray(0, 12));
  decipher.setAAD(encodeContext(context));
  decipher.setAuthTag(raw.subarray(raw.length - 16));
  return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString(
    'utf8',
  );
}

function sealLocally(
  material: Uint8Array,
  version: number,
  plaintext: string,
  context: Record<string, string>,
): Uint8Array {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', material, nonce);
  cipher.setAAD(encodeContext(context));
  const body = Buffer.concat([nonce, cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return bytes(`vault:v${version}:${body.toString('base64')}`);
}

describe('BYOK import with RSA_AES_KEY_WRAP_SHA_1 (hash_function SHA1) against OpenBao', () => {
  let p: VaultTransitProvider;
  beforeAll(() => {
    p = provider();
  });
  afterAll(() => p.close());

  it('declares both OAEP hashes for import', () => {
    expect(p.capabilities.import).toEqual(['RSA_AES_KEY_WRAP_SHA_256', 'RSA_AES_KEY_WRAP_SHA_1']);
  });

  it('imports AES material wrapped with OAEP-SHA1 + AES-KWP; both sides decrypt what the other encrypted', async () => {
    const pending = await p.createKey(
      { name: keyName('byok-sha1'), spec: 'AES_256', external: true },
      call(),
    );
    const params = await p.getImportParameters(
      { uri: pending.uri },
      { algorithm: 'RSA_AES_KEY_WRAP_SHA_1' },
      call(),
    );
    expect(params.algorithm).toBe('RSA_AES_KEY_WRAP_SHA_1');
    expect(
      createPublicKey({ key: Buffer.from(params.wrappingPublicKey), format: 'der', type: 'spki' }),
    ).toMatchObject({ asymmetricKeyType: 'rsa' });
    const material = new Uint8Array(randomBytes(32));
    const info = await p.importKeyMaterial(
      { uri: pending.uri },
      { wrappedMaterial: wrapSha1(params.wrappingPublicKey, material), algorithm: 'RSA_AES_KEY_WRAP_SHA_1' },
      call(),
    );
    expect(info).toMatchObject({
      state: 'enabled',
      origin: 'external',
      spec: 'AES_256',
      primaryVersion: '1',
    });

    const context = { tenant: 'acme', purpose: 'byok-sha1' };
    // transit -> the caller's copy of the key
    const sealed = await p.encrypt({ uri: info.uri }, bytes('sealed by OpenBao'), { context }, call());
    expect(openLocally(material, sealed.ciphertext, context)).toBe('sealed by OpenBao');
    // the caller's copy -> transit, and the context is bound
    const outside = sealLocally(material, 1, 'sealed outside', context);
    expect(text((await p.decrypt({ uri: info.uri }, outside, { context }, call())).plaintext)).toBe(
      'sealed outside',
    );
    const mismatch = p.decrypt({ uri: info.uri }, outside, { context: { ...context, tenant: 'x' } }, call());
    expect((await rejection(p, mismatch)).code).toBe('InvalidCiphertext');
  });

  it('adds a version with SHA-1 wrapping (import_version), wrapped by the exported helper', async () => {
    const pending = await p.createKey(
      { name: keyName('byok-sha1-v2'), spec: 'AES_256', external: true },
      call(),
    );
    const algorithm = 'RSA_AES_KEY_WRAP_SHA_1' as const;
    const first = await p.getImportParameters({ uri: pending.uri }, { algorithm }, call());
    await p.importKeyMaterial(
      { uri: pending.uri },
      { wrappedMaterial: wrapForImport(first.wrappingPublicKey, randomBytes(32), algorithm), algorithm },
      call(),
    );
    const second = await p.getImportParameters({ uri: pending.uri }, { algorithm }, call());
    const material = new Uint8Array(randomBytes(32));
    const info = await p.importKeyMaterial(
      { uri: pending.uri },
      { wrappedMaterial: wrapForImport(second.wrappingPublicKey, material, algorithm), algorithm },
      call(),
    );
    expect(info.primaryVersion).toBe('2');
    const sealed = await p.encrypt({ uri: info.uri }, bytes('version two'), {}, call());
    expect(text(sealed.ciphertext)).toMatch(/^vault:v2:/);
    expect(openLocally(material, sealed.ciphertext, {})).toBe('version two');
  });

  it('material wrapped with OAEP-SHA1 but declared SHA-256 does not unwrap, and nothing is created', async () => {
    const pending = await p.createKey(
      { name: keyName('byok-mismatch'), spec: 'AES_256', external: true },
      call(),
    );
    const params = await p.getImportParameters({ uri: pending.uri }, {}, call());
    expect(params.algorithm).toBe('RSA_AES_KEY_WRAP_SHA_256');
    const wrong = p.importKeyMaterial(
      { uri: pending.uri },
      {
        wrappedMaterial: wrapSha1(params.wrappingPublicKey, randomBytes(32)),
        algorithm: 'RSA_AES_KEY_WRAP_SHA_256',
      },
      call(),
    );
    expect((await rejection(p, wrong)).code).toBe('InvalidCiphertext');
    expect((await p.describeKey({ uri: pending.uri }, call())).state).toBe('pending_import');
  });

  it('refuses plain RSAES-OAEP for import parameters (Unsupported, naming both transit algorithms)', async () => {
    const pending = await p.createKey(
      { name: keyName('byok-plain'), spec: 'AES_256', external: true },
      call(),
    );
    const refused = await rejection(
      p,
      p.getImportParameters({ uri: pending.uri }, { algorithm: 'RSAES_OAEP_SHA_1' }, call()),
    );
    expect(refused.code).toBe('Unsupported');
    expect(refused.message).toContain('RSA_AES_KEY_WRAP_SHA_1');
  });
});

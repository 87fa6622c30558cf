import { createDecipheriv, createVerify, generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type VaultTransitProvider, wrapForImport } from '../src/index.js';
import { bytes, call, keyName, provider, rejection, text } from './helpers.js';

/** Opens a transit aes256-gcm96 ciphertext with the raw key: vault:vN:base64(nonce12 || ct || tag16). */
function openLocally(key: Uint8Array, ciphertext: Uint8Array): string {
  const raw = Buffer.from(text(ciphertext).split(':')[2] ?? '', 'base64');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(raw.length - 16));
  return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString(
    'utf8',
  );
}

describe('BYOK import against OpenBao', () => {
  let p: VaultTransitProvider;
  beforeAll(() => {
    p = provider();
  });
  afterAll(() => p.close());

  it('imports AES material (RSA-OAEP-SHA256 + AES-KWP) and really uses those bytes', async () => {
    const name = keyName('byok-aes');
    const pending = await p.createKey({ name, spec: 'AES_256', external: true }, call());
    expect(pending.state).toBe('pending_import');
    expect((await p.describeKey({ uri: pending.uri }, call())).state).toBe('pending_import');
    const params = await p.getImportParameters({ uri: pending.uri }, {}, call());
    expect(params.algorithm).toBe('RSA_AES_KEY_WRAP_SHA_256');
    const material = new Uint8Array(randomBytes(32));
    const info = await p.importKeyMaterial(
      { uri: pending.uri },
      { wrappedMaterial: wrapForImport(params.wrappingPublicKey, material), algorithm: params.algorithm },
      call(),
    );
    expect(info).toMatchObject({ state: 'enabled', origin: 'external', spec: 'AES_256' });
    const ct = await p.encrypt({ uri: info.uri }, bytes('imported'), {}, call());
    expect(openLocally(material, ct.ciphertext)).toBe('imported');
  });

  it('imports an EC P-256 private key (PKCS#8) and signs verifiably with its public half', async () => {
    const name = keyName('byok-ec');
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const material = new Uint8Array(privateKey.export({ type: 'pkcs8', format: 'der' }));
    const pending = await p.createKey({ name, spec: 'EC_P256', external: true }, call());
    const params = await p.getImportParameters({ uri: pending.uri }, {}, call());
    await p.importKeyMaterial(
      { uri: pending.uri },
      { wrappedMaterial: wrapForImport(params.wrappingPublicKey, material), algorithm: params.algorithm },
      call(),
    );
    const sig = await p.sign({ uri: pending.uri }, bytes('byok'), {}, call());
    expect(createVerify('sha256').update('byok').verify(publicKey, sig.signature)).toBe(true);
  });

  it('refuses other wrapping algorithms and garbage material', async () => {
    const pending = await p.createKey({ name: keyName('byok-bad'), spec: 'AES_256', external: true }, call());
    const params = await p.getImportParameters({ uri: pending.uri }, {}, call());
    const wrongAlg = p.importKeyMaterial(
      { uri: pending.uri },
      { wrappedMaterial: new Uint8Array(600), algorithm: 'RSAES_OAEP_SHA_256' },
      call(),
    );
    expect((await rejection(p, wrongAlg)).code).toBe('InvalidArgument');
    const garbage = p.importKeyMaterial(
      { uri: pending.uri },
      { wrappedMaterial: new Uint8Array(600), algorithm: params.algorithm },
      call(),
    );
    expect((await rejection(p, garbage)).code).toBe('InvalidCiphertext');
  });
});

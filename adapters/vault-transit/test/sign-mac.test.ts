import { constants, createPublicKey, createVerify } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VaultTransitProvider } from '../src/index.js';
import { bytes, call, keyName, provider, rejection, rootClient } from './helpers.js';

/** The public key of one version, from transit's key read (PEM). */
async function publicKey(p: VaultTransitProvider, uri: string, version: string) {
  const data = await p.readTransitKey({ uri });
  const entry = data.keys?.[version];
  if (typeof entry !== 'object' || entry.public_key === undefined) throw new Error('no public key');
  return createPublicKey(entry.public_key);
}

describe('sign / verify and HMAC against OpenBao', () => {
  let p: VaultTransitProvider;
  beforeAll(() => {
    p = provider();
  });
  afterAll(() => p.close());

  it('signs with RSA-PSS (salt = hash length) and PKCS#1 v1.5; node:crypto verifies both', async () => {
    const uri = (await p.createKey({ name: keyName('rsa'), spec: 'RSA_2048', usage: 'sign_verify' }, call()))
      .uri;
    const msg = bytes('message');
    const pss = await p.sign({ uri }, msg, {}, call());
    expect(pss).toMatchObject({ algorithm: 'RSASSA_PSS_SHA_256', keyVersion: '1' });
    const key = await publicKey(p, uri, '1');
    const okPss = createVerify('sha256')
      .update(msg)
      .verify({ key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, pss.signature);
    expect(okPss).toBe(true);
    expect(await p.verify({ uri }, msg, pss.signature, { algorithm: 'RSASSA_PSS_SHA_256' }, call())).toBe(
      true,
    );
    expect(
      await p.verify({ uri }, bytes('other'), pss.signature, { algorithm: 'RSASSA_PSS_SHA_256' }, call()),
    ).toBe(false);
    const v15 = await p.sign({ uri }, msg, { algorithm: 'RSASSA_PKCS1_V1_5_SHA_256' }, call());
    expect(createVerify('sha256').update(msg).verify(key, v15.signature)).toBe(true);
    expect(
      await p.verify({ uri }, msg, v15.signature, { algorithm: 'RSASSA_PKCS1_V1_5_SHA_256' }, call()),
    ).toBe(true);
    const mismatch = await rejection(p, p.sign({ uri }, msg, { algorithm: 'ECDSA_SHA_256' }, call()));
    expect(mismatch.code).toBe('InvalidArgument');
  });

  it('signs with ECDSA P-256 / P-384 as DER; prehashed digests too; old versions still verify', async () => {
    for (const [spec, algorithm, hash] of [
      ['EC_P256', 'ECDSA_SHA_256', 'sha256'],
      ['EC_P384', 'ECDSA_SHA_384', 'sha384'],
    ] as const) {
      const uri = (await p.createKey({ name: keyName(spec.toLowerCase()), spec }, call())).uri;
      const msg = bytes(`ec ${spec}`);
      const sig = await p.sign({ uri }, msg, {}, call());
      expect(sig.algorithm).toBe(algorithm);
      expect(sig.signature[0]).toBe(0x30); // DER SEQUENCE
      const key = await publicKey(p, uri, '1');
      expect(createVerify(hash).update(msg).verify(key, sig.signature)).toBe(true);
      const { createHash } = await import('node:crypto');
      const digest = new Uint8Array(createHash(hash).update(msg).digest());
      const sigD = await p.sign({ uri }, digest, { messageType: 'digest' }, call());
      expect(createVerify(hash).update(msg).verify(key, sigD.signature)).toBe(true);
      await p.rotateKey({ uri }, call());
      // A signature by version 1 still verifies after rotation (all live versions are tried).
      expect(await p.verify({ uri }, msg, sig.signature, { algorithm }, call())).toBe(true);
      expect(await p.verify({ uri, version: '2' }, msg, sig.signature, { algorithm }, call())).toBe(false);
    }
  });

  it('computes and verifies HMAC-SHA256 with an HMAC key, refusing MACs with other keys', async () => {
    const uri = (await p.createKey({ name: keyName('hmac'), spec: 'HMAC_256' }, call())).uri;
    const msg = bytes('mac me');
    const tag = await p.mac({ uri }, msg, call());
    expect(tag.mac.length).toBe(32);
    expect(tag.keyVersion).toBe('1');
    expect(await p.verifyMac({ uri }, msg, tag.mac, call())).toBe(true);
    expect(await p.verifyMac({ uri }, bytes('other'), tag.mac, call())).toBe(false);
    await p.rotateKey({ uri }, call());
    expect(await p.verifyMac({ uri }, msg, tag.mac, call())).toBe(true);
    const aes = (await p.createKey({ name: keyName('not-mac'), spec: 'AES_256' }, call())).uri;
    expect((await rejection(p, p.mac({ uri: aes }, msg, call()))).code).toBe('InvalidArgument');
  });

  it('verifyMac on an HMAC key replaced elsewhere by an AES key is Internal once, then InvalidArgument', async () => {
    const name = keyName('replaced-mac');
    const uri = (await p.createKey({ name, spec: 'HMAC_256' }, call())).uri;
    await p.mac({ uri }, bytes('m'), call());
    const root = rootClient();
    await root.write(`transit/keys/${name}/config`, { deletion_allowed: true });
    await root.delete(`transit/keys/${name}`);
    await root.write(`transit/keys/${name}`, { type: 'aes256-gcm96' });
    const run = () => p.verifyMac({ uri }, bytes('m'), new Uint8Array(32), call());
    const replaced = await rejection(p, run());
    expect(replaced.code).toBe('Internal');
    expect(replaced.message).toMatch(/key read of another type than before: the key was replaced/);
    // Forgotten: the next call reads the key as it is now, and refuses it as no MAC key.
    const again = await rejection(p, run());
    expect(again.code).toBe('InvalidArgument');
    expect(again.message).toMatch(/aes256-gcm96 keys are not MAC keys/);
  });

  it('refuses portable signing with ed25519 keys (core has no algorithm name for it)', async () => {
    const name = keyName('ed');
    await p.createTransitKey(name, 'ed25519');
    const uri = `hcvault://${p.session.address}/transit/keys/${name}`;
    expect((await rejection(p, p.sign({ uri }, bytes('m'), {}, call()))).code).toBe('Unsupported');
  });
});

import { Keyport } from '@keyport/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VaultTransitProvider } from '../src/index.js';
import { bytes, call, keyName, provider, rejection, text } from './helpers.js';

describe('key lifecycle against OpenBao', () => {
  let p: VaultTransitProvider;
  beforeAll(() => {
    p = provider();
  });
  afterAll(() => p.close());

  it('creates every declared spec, describes it, and refuses a taken name', async () => {
    for (const spec of Object.keys(p.capabilities.keySpecs) as Array<keyof typeof p.capabilities.keySpecs>) {
      const info = await p.createKey({ name: keyName(spec.toLowerCase()), spec }, call());
      expect(info).toMatchObject({ spec, state: 'enabled', primaryVersion: '1', origin: 'provider' });
      expect(info.uri).toMatch(/^hcvault:\/\/127\.0\.0\.1:\d+\/transit\/keys\//);
      const again = await p.describeKey({ uri: info.uri }, call());
      expect(again.spec).toBe(spec);
    }
    const name = keyName('dup');
    await p.createKey({ name, spec: 'AES_256' }, call());
    expect((await rejection(p, p.createKey({ name, spec: 'AES_256' }, call()))).code).toBe('AlreadyExists');
    const labelled = p.createKey({ name: keyName('lbl'), spec: 'AES_256', labels: { a: 'b' } }, call());
    expect((await rejection(p, labelled)).code).toBe('InvalidArgument');
  });

  it('lists keys of the mount as KeyInfo', async () => {
    const uri = (await p.createKey({ name: keyName('listed'), spec: 'EC_P256' }, call())).uri;
    const seen: string[] = [];
    for await (const info of p.listKeys(call())) seen.push(info.uri);
    expect(seen).toContain(uri);
  });

  it('lists keys of transit types keyport has no spec for as unmodeled, never leaves them out', async () => {
    const ed = keyName('ed25519');
    await p.createTransitKey(ed, 'ed25519');
    const uri = `hcvault://${p.session.address}/transit/keys/${ed}`;
    const listed = [];
    for await (const entry of p.listKeys(call())) if (entry.uri === uri) listed.push(entry);
    expect(listed).toEqual([{ uri, unmodeled: 'keyport has no key spec for transit ed25519 keys' }]);
    const heard: string[] = [];
    const keyport = new Keyport({ providers: [provider()] });
    try {
      for await (const info of keyport.listKeys('hcvault', { onUnmodeledKey: (k) => heard.push(k.uri) }))
        expect(info.uri).not.toBe(uri);
    } finally {
      await keyport.close();
    }
    expect(heard).toContain(uri);
  });

  it('rotates: new versions encrypt, old ciphertexts still decrypt', async () => {
    const uri = (await p.createKey({ name: keyName('rot'), spec: 'AES_256' }, call())).uri;
    const v1 = await p.encrypt({ uri }, bytes('one'), {}, call());
    const info = await p.rotateKey({ uri }, call());
    expect(info.primaryVersion).toBe('2');
    expect(info.versions?.map((v) => v.version)).toEqual(['1', '2']);
    expect((await p.encrypt({ uri }, bytes('two'), {}, call())).keyVersion).toBe('2');
    expect(text((await p.decrypt({ uri }, v1.ciphertext, {}, call())).plaintext)).toBe('one');
  });

  it('sets and clears auto-rotation (auto_rotate_period), refusing periods under an hour', async () => {
    const uri = (
      await p.createKey({ name: keyName('auto'), spec: 'AES_256', rotation: { periodDays: 30 } }, call())
    ).uri;
    expect((await p.describeKey({ uri }, call())).rotation?.periodDays).toBe(30);
    expect((await p.setRotationPolicy({ uri }, { periodDays: 7 }, call())).rotation?.periodDays).toBe(7);
    expect((await p.setRotationPolicy({ uri }, {}, call())).rotation).toBeUndefined();
    expect((await rejection(p, p.setRotationPolicy({ uri }, { periodDays: 0.01 }, call()))).code).toBe(
      'InvalidArgument',
    );
  });

  it('disables and enables with OpenBao soft-delete; Vault flavor declares no disable', async () => {
    const uri = (await p.createKey({ name: keyName('dis'), spec: 'AES_256' }, call())).uri;
    const ct = await p.encrypt({ uri }, bytes('x'), {}, call());
    expect((await p.disableKey({ uri }, call())).state).toBe('disabled');
    expect((await rejection(p, p.encrypt({ uri }, bytes('x'), {}, call()))).code).toBe('KeyStateConflict');
    expect((await rejection(p, p.decrypt({ uri }, ct.ciphertext, {}, call()))).code).toBe('KeyStateConflict');
    expect((await p.enableKey({ uri }, call())).state).toBe('enabled');
    expect(text((await p.decrypt({ uri }, ct.ciphertext, {}, call())).plaintext)).toBe('x');
    const vault = provider({ flavor: 'vault' });
    expect(vault.capabilities.enableDisable).toBe(false);
    expect((await rejection(vault, vault.disableKey({ uri }, call()))).code).toBe('Unsupported');
    await vault.close();
  });

  it('declares no scheduled deletion and deletes at once with deleteKey', async () => {
    const uri = (await p.createKey({ name: keyName('del'), spec: 'AES_256' }, call())).uri;
    // No such methods on the driver: core answers UnsupportedError for what a driver lacks.
    expect('scheduleKeyDeletion' in p || 'cancelKeyDeletion' in p).toBe(false);
    const kp = new Keyport({ providers: [p] });
    await expect(kp.scheduleKeyDeletion(uri)).rejects.toMatchObject({ code: 'Unsupported' });
    await expect(kp.cancelKeyDeletion(uri)).rejects.toMatchObject({ code: 'Unsupported' });
    await p.deleteKey({ uri });
    expect((await rejection(p, p.describeKey({ uri }, call()))).code).toBe('NotFound');
  });

  it('min_decryption_version blocks old ciphertexts with KeyStateConflict', async () => {
    const uri = (await p.createKey({ name: keyName('mdv'), spec: 'AES_256' }, call())).uri;
    const old = await p.encrypt({ uri }, bytes('old'), {}, call());
    await p.rotateKey({ uri }, call());
    const info = await p.setVersionPolicy({ uri }, { minDecryptionVersion: 2 });
    expect(info.versions?.[0]?.state).toBe('disabled');
    expect((await rejection(p, p.decrypt({ uri }, old.ciphertext, {}, call()))).code).toBe(
      'KeyStateConflict',
    );
  });

  it('destroys the oldest version with trim, refusing the primary and out-of-order versions', async () => {
    const uri = (await p.createKey({ name: keyName('trim'), spec: 'AES_256' }, call())).uri;
    const v1 = await p.encrypt({ uri }, bytes('v1'), {}, call());
    await p.rotateKey({ uri }, call());
    await p.rotateKey({ uri }, call());
    expect((await rejection(p, p.destroyKeyVersion({ uri, version: '3' }, call()))).code).toBe(
      'KeyStateConflict',
    );
    expect((await rejection(p, p.destroyKeyVersion({ uri, version: '2' }, call()))).code).toBe(
      'KeyStateConflict',
    );
    const info = await p.destroyKeyVersion({ uri, version: '1' }, call());
    expect(info.versions?.map((v) => v.state)).toEqual(['destroyed', 'enabled', 'enabled']);
    expect((await rejection(p, p.decrypt({ uri }, v1.ciphertext, {}, call()))).code).toBe('KeyStateConflict');
    expect((await p.encrypt({ uri }, bytes('still'), {}, call())).keyVersion).toBe('3');
  });
});

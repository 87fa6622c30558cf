import { readFile } from 'node:fs/promises';
import { readFrame } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { deriveKeys, readHeader, unseal } from '../src/sealed-file.js';
import { bytes, collect, expectCode, FakeClock, newKeystore, o, PASSPHRASE, text } from './helpers.js';

async function setup() {
  const clock = new FakeClock();
  const { kp, path } = await newKeystore({ clock: clock.now });
  const key = await kp.createKey(
    { name: 'k', spec: 'AES_256', labels: { env: 'test' }, description: 'd' },
    o,
  );
  return { kp, path, clock, key, ref: { uri: key.uri } };
}

describe('createKey / describeKey / listKeys', () => {
  it('describes a new key fully', async () => {
    const { kp, key, ref, clock } = await setup();
    expect(key).toMatchObject({
      spec: 'AES_256',
      usage: 'encrypt_decrypt',
      state: 'enabled',
      primaryVersion: '1',
      labels: { env: 'test' },
      description: 'd',
      origin: 'provider',
      createdAt: clock.current,
    });
    expect(key.uri).toMatch(/^local:\/\/.*keys\.keystore#k$/);
    expect(key.versions).toEqual([{ version: '1', state: 'enabled', createdAt: clock.current }]);
    expect(await kp.describeKey(ref, o)).toEqual(key);
  });

  it('creates by name or by URI; duplicates are AlreadyExists; bad requests InvalidArgument', async () => {
    const { kp, key } = await setup();
    const byUri = await kp.createKey({ name: key.uri.replace('#k', '#k2'), spec: 'HMAC_256' }, o);
    expect(byUri.uri).toBe(key.uri.replace('#k', '#k2'));
    await expectCode(kp.createKey({ name: 'k', spec: 'HMAC_256' }, o), 'AlreadyExists');
    await expectCode(kp.createKey({ name: 'bad name', spec: 'AES_256' }, o), 'InvalidArgument');
    await expectCode(kp.createKey({ name: 'x', spec: 'DES' as 'AES_256' }, o), 'InvalidArgument');
    await expectCode(kp.createKey({ name: 'x', spec: 'AES_256', usage: 'mac' }, o), 'InvalidArgument');
    await expectCode(
      kp.createKey({ name: 'x', spec: 'AES_256', rotation: { periodDays: 0 } }, o),
      'InvalidArgument',
    );
    await expectCode(
      kp.createKey({ name: `${key.uri.replace('#k', '?version=1#x')}`, spec: 'AES_256' }, o),
      'InvalidArgument',
    );
  });

  it('lists every key with its state', async () => {
    const { kp } = await setup();
    await kp.createKey({ name: 'k2', spec: 'EC_P256' }, o);
    await kp.disableKey({ uri: kp.keyUri('k2') }, o);
    const keys = await collect(kp.listKeys(o));
    expect(keys.map((k) => [k.uri.split('#')[1], k.state])).toEqual([
      ['k', 'enabled'],
      ['k2', 'disabled'],
    ]);
  });
});

describe('rotation', () => {
  it('rotateKey adds a primary version; old ciphertexts still decrypt; new ones use the new version', async () => {
    const { kp, ref } = await setup();
    const old = await kp.encrypt(ref, bytes('v1 data'), { context: { c: '1' } }, o);
    const rotated = await kp.rotateKey(ref, o);
    expect(rotated.primaryVersion).toBe('2');
    expect(rotated.versions?.map((v) => [v.version, v.state])).toEqual([
      ['1', 'enabled'],
      ['2', 'enabled'],
    ]);
    const fresh = await kp.encrypt(ref, bytes('v2 data'), {}, o);
    expect(fresh.keyVersion).toBe('2');
    expect(readFrame(fresh.ciphertext).keyVersion).toBe('2');
    const opened = await kp.decrypt(ref, old.ciphertext, { context: { c: '1' } }, o);
    expect([text(opened.plaintext), opened.keyVersion]).toEqual(['v1 data', '1']);
    expect((await kp.encrypt({ ...ref, version: '1' }, bytes('pinned'), {}, o)).keyVersion).toBe('1');
  });

  it('auto-rotates when due, checked on use, with the injected clock', async () => {
    const { kp, ref, clock } = await setup();
    const policy = await kp.setRotationPolicy(ref, { periodDays: 30 }, o);
    expect(policy.rotation).toEqual({ periodDays: 30, nextRotationAt: new Date('2030-01-31T00:00:00.000Z') });
    const before = await kp.encrypt(ref, bytes('old'), {}, o);
    clock.advanceDays(29);
    expect((await kp.encrypt(ref, bytes('x'), {}, o)).keyVersion).toBe('1');
    clock.advanceDays(1);
    expect((await kp.encrypt(ref, bytes('x'), {}, o)).keyVersion).toBe('2');
    const info = await kp.describeKey(ref, o);
    expect(info.primaryVersion).toBe('2');
    expect(info.rotation?.nextRotationAt).toEqual(new Date('2030-03-02T00:00:00.000Z'));
    // many missed periods: one rotation, next date past now on the original cadence
    clock.advanceDays(100);
    const later = await kp.describeKey(ref, o);
    expect(later.primaryVersion).toBe('3');
    expect(later.rotation?.nextRotationAt).toEqual(new Date('2030-05-31T00:00:00.000Z'));
    expect(text((await kp.decrypt(ref, before.ciphertext, {}, o)).plaintext)).toBe('old');
  });

  it('does not auto-rotate a disabled key, and stops when the policy is cleared', async () => {
    const { kp, ref, clock } = await setup();
    await kp.setRotationPolicy(ref, { periodDays: 1 }, o);
    await kp.disableKey(ref, o);
    clock.advanceDays(2);
    expect((await kp.describeKey(ref, o)).primaryVersion).toBe('1');
    await kp.enableKey(ref, o);
    expect((await kp.describeKey(ref, o)).primaryVersion).toBe('2');
    const cleared = await kp.setRotationPolicy(ref, {}, o);
    expect(cleared.rotation).toBeUndefined();
    clock.advanceDays(10);
    expect((await kp.describeKey(ref, o)).primaryVersion).toBe('2');
  });

  it('validates rotation policies', async () => {
    const { kp, ref } = await setup();
    for (const periodDays of [0, -1, 1.5, 36_501]) {
      await expectCode(kp.setRotationPolicy(ref, { periodDays }, o), 'InvalidArgument');
    }
    await expectCode(
      kp.setRotationPolicy(ref, { periodDays: 5, nextRotationAt: new Date(0) }, o),
      'InvalidArgument',
    );
  });
});

describe('key states', () => {
  it('disabled: every cryptographic operation is KeyStateConflict; enable restores', async () => {
    const { kp, ref } = await setup();
    const ct = await kp.encrypt(ref, bytes('x'), {}, o);
    expect((await kp.disableKey(ref, o)).state).toBe('disabled');
    await expectCode(kp.encrypt(ref, bytes('x'), {}, o), 'KeyStateConflict');
    await expectCode(kp.decrypt(ref, ct.ciphertext, {}, o), 'KeyStateConflict');
    await expectCode(kp.generateDataKey(ref, {}, o), 'KeyStateConflict');
    await expectCode(kp.rotateKey(ref, o), 'KeyStateConflict');
    expect((await kp.disableKey(ref, o)).state).toBe('disabled');
    expect((await kp.enableKey(ref, o)).state).toBe('enabled');
    expect(text((await kp.decrypt(ref, ct.ciphertext, {}, o)).plaintext)).toBe('x');
  });

  it('disabled signing and MAC keys refuse sign, verify, mac and verifyMac', async () => {
    const { kp } = await setup();
    const ec = { uri: (await kp.createKey({ name: 'ec', spec: 'EC_P256' }, o)).uri };
    const hm = { uri: (await kp.createKey({ name: 'hm', spec: 'HMAC_256' }, o)).uri };
    const sig = await kp.sign(ec, bytes('m'), {}, o);
    const tag = await kp.mac(hm, bytes('m'), o);
    await kp.disableKey(ec, o);
    await kp.disableKey(hm, o);
    await expectCode(kp.sign(ec, bytes('m'), {}, o), 'KeyStateConflict');
    await expectCode(
      kp.verify(ec, bytes('m'), sig.signature, { algorithm: 'ECDSA_SHA_256' }, o),
      'KeyStateConflict',
    );
    await expectCode(kp.mac(hm, bytes('m'), o), 'KeyStateConflict');
    await expectCode(kp.verifyMac(hm, bytes('m'), tag.mac, o), 'KeyStateConflict');
  });

  it('scheduled deletion: waiting period, everything refused, cancel leaves the key disabled', async () => {
    const { kp, ref, clock } = await setup();
    const ct = await kp.encrypt(ref, bytes('x'), {}, o);
    const scheduled = await kp.scheduleKeyDeletion(ref, {}, o);
    expect(scheduled.state).toBe('pending_deletion');
    expect(scheduled.deletionDate).toEqual(new Date('2030-01-31T00:00:00.000Z'));
    await expectCode(kp.decrypt(ref, ct.ciphertext, {}, o), 'KeyStateConflict');
    await expectCode(kp.enableKey(ref, o), 'KeyStateConflict');
    await expectCode(kp.disableKey(ref, o), 'KeyStateConflict');
    await expectCode(kp.rotateKey(ref, o), 'KeyStateConflict');
    await expectCode(kp.scheduleKeyDeletion(ref, { days: 7 }, o), 'KeyStateConflict');
    clock.advanceDays(29);
    const cancelled = await kp.cancelKeyDeletion(ref, o);
    expect(cancelled.state).toBe('disabled');
    expect(cancelled.deletionDate).toBeUndefined();
    await expectCode(kp.cancelKeyDeletion(ref, o), 'KeyStateConflict');
    await kp.enableKey(ref, o);
    expect(text((await kp.decrypt(ref, ct.ciphertext, {}, o)).plaintext)).toBe('x');
  });

  it('deletion becomes effective when the clock passes the date: destroyed, material erased', async () => {
    const { kp, ref, clock, path } = await setup();
    const ct = await kp.encrypt(ref, bytes('x'), {}, o);
    await kp.scheduleKeyDeletion(ref, { days: 1 }, o);
    clock.advanceMs(86_400_000 - 1);
    expect((await kp.describeKey(ref, o)).state).toBe('pending_deletion');
    clock.advanceMs(1);
    const gone = await kp.describeKey(ref, o);
    expect(gone.state).toBe('destroyed');
    expect(gone.primaryVersion).toBeUndefined();
    expect(gone.versions?.every((v) => v.state === 'destroyed')).toBe(true);
    await expectCode(kp.decrypt(ref, ct.ciphertext, {}, o), 'KeyStateConflict');
    await expectCode(kp.cancelKeyDeletion(ref, o), 'KeyStateConflict');
    await expectCode(kp.enableKey(ref, o), 'KeyStateConflict');
    await expectCode(kp.createKey({ name: 'k', spec: 'AES_256' }, o), 'AlreadyExists');
    // The file no longer holds the material: open the stored body directly.
    const raw = await readFile(path);
    const header = readHeader(raw);
    const keys = await deriveKeys(Buffer.from(PASSPHRASE), header.params, header.salt);
    const stored = JSON.parse(unseal(raw, keys).toString()) as {
      keys: Array<{ versions: Array<{ material?: string }> }>;
    };
    expect(stored.keys[0]?.versions.every((v) => v.material === undefined)).toBe(true);
  });

  it('validates the waiting period (1-365 whole days)', async () => {
    const { kp, ref } = await setup();
    for (const days of [0, 366, 2.5, -3])
      await expectCode(kp.scheduleKeyDeletion(ref, { days }, o), 'InvalidArgument');
    expect((await kp.scheduleKeyDeletion(ref, { days: 365 }, o)).state).toBe('pending_deletion');
  });

  it('destroyKeyVersion destroys an old version only', async () => {
    const { kp, ref } = await setup();
    const v1 = await kp.encrypt(ref, bytes('one'), {}, o);
    await expectCode(kp.destroyKeyVersion({ ...ref, version: '1' }, o), 'KeyStateConflict'); // primary
    await kp.rotateKey(ref, o);
    await expectCode(kp.destroyKeyVersion(ref, o), 'InvalidArgument'); // no version
    await expectCode(kp.destroyKeyVersion({ ...ref, version: '9' }, o), 'NotFound');
    const info = await kp.destroyKeyVersion({ ...ref, version: '1' }, o);
    expect(info.versions?.map((v) => [v.version, v.state])).toEqual([
      ['1', 'destroyed'],
      ['2', 'enabled'],
    ]);
    expect(info.versions?.[0]?.destroyAt).toBeInstanceOf(Date);
    await expectCode(kp.decrypt(ref, v1.ciphertext, {}, o), 'KeyStateConflict');
    await expectCode(kp.encrypt({ ...ref, version: '1' }, bytes('x'), {}, o), 'KeyStateConflict');
    await expectCode(kp.destroyKeyVersion({ ...ref, version: '1' }, o), 'KeyStateConflict');
    expect((await kp.encrypt(ref, bytes('x'), {}, o)).keyVersion).toBe('2');
  });

  it('unknown keys are NotFound for every lifecycle call', async () => {
    const { kp } = await setup();
    const ref = { uri: kp.keyUri('missing') };
    await expectCode(kp.describeKey(ref, o), 'NotFound');
    await expectCode(kp.rotateKey(ref, o), 'NotFound');
    await expectCode(kp.enableKey(ref, o), 'NotFound');
    await expectCode(kp.scheduleKeyDeletion(ref, {}, o), 'NotFound');
    await expectCode(kp.setRotationPolicy(ref, { periodDays: 3 }, o), 'NotFound');
  });
});

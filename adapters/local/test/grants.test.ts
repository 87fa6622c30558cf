import { describe, expect, it } from 'vitest';
import { bytes, collect, expectCode, FakeClock, newKeystore, o, open, text } from './helpers.js';

async function setup() {
  const clock = new FakeClock();
  const { kp: owner, path } = await newKeystore({ clock: clock.now, principal: 'admin' });
  const key = await owner.createKey({ name: 'shared', spec: 'AES_256' }, o);
  const app = await open({ path, principal: 'app', clock: clock.now });
  return { owner, app, path, clock, ref: { uri: key.uri } };
}

describe('grants', () => {
  it('the creating principal owns the keystore; reopening without a principal acts as the owner', async () => {
    const { owner, path } = await setup();
    expect(owner.principal).toBe('admin');
    expect((await open({ path })).principal).toBe('admin');
  });

  it('a principal without a grant is AccessDenied for use and for management', async () => {
    const { owner, app, ref } = await setup();
    const ct = await owner.encrypt(ref, bytes('x'), {}, o);
    await expectCode(app.encrypt(ref, bytes('x'), {}, o), 'AccessDenied');
    await expectCode(app.decrypt(ref, ct.ciphertext, {}, o), 'AccessDenied');
    await expectCode(app.describeKey(ref, o), 'AccessDenied');
    await expectCode(app.createKey({ name: 'mine', spec: 'AES_256' }, o), 'AccessDenied');
    await expectCode(app.disableKey(ref, o), 'AccessDenied');
    await expectCode(app.rotateKey(ref, o), 'AccessDenied');
    await expectCode(app.scheduleKeyDeletion(ref, {}, o), 'AccessDenied');
    await expectCode(app.createGrant(ref, { grantee: 'app', operations: ['encrypt'] }, o), 'AccessDenied');
    await expectCode(collect(app.listGrants(ref, o)), 'AccessDenied');
    expect(await collect(app.listKeys(o))).toEqual([]);
  });

  it('allows exactly the granted operations', async () => {
    const { owner, app, ref } = await setup();
    const grant = await owner.createGrant(
      ref,
      { grantee: 'app', operations: ['encrypt', 'describe'], name: 'enc' },
      o,
    );
    expect(grant).toMatchObject({
      grantee: 'app',
      operations: ['encrypt', 'describe'],
      name: 'enc',
      keyUri: ref.uri,
    });
    const ct = await app.encrypt(ref, bytes('hello'), {}, o);
    await expectCode(app.decrypt(ref, ct.ciphertext, {}, o), 'AccessDenied');
    await expectCode(app.generateDataKey(ref, {}, o), 'AccessDenied');
    expect((await app.describeKey(ref, o)).state).toBe('enabled');
    expect((await collect(app.listKeys(o))).map((k) => k.uri)).toEqual([ref.uri]);
    expect(text((await owner.decrypt(ref, ct.ciphertext, {}, o)).plaintext)).toBe('hello');
    // another principal gains nothing from app's grant
    const other = await open({
      path: ref.uri.slice('local://'.length, ref.uri.indexOf('#')),
      principal: 'other',
    });
    await expectCode(other.encrypt(ref, bytes('x'), {}, o), 'AccessDenied');
  });

  it('contextEquals: the call context must equal the constraint exactly', async () => {
    const { owner, app, ref } = await setup();
    await owner.createGrant(
      ref,
      {
        grantee: 'app',
        operations: ['encrypt', 'decrypt'],
        constraints: { contextEquals: { tenant: 'a', env: 'prod' } },
      },
      o,
    );
    const ct = await app.encrypt(ref, bytes('x'), { context: { env: 'prod', tenant: 'a' } }, o);
    expect(
      text((await app.decrypt(ref, ct.ciphertext, { context: { tenant: 'a', env: 'prod' } }, o)).plaintext),
    ).toBe('x');
    await expectCode(app.encrypt(ref, bytes('x'), { context: { tenant: 'a' } }, o), 'AccessDenied');
    await expectCode(
      app.encrypt(ref, bytes('x'), { context: { tenant: 'a', env: 'prod', extra: '1' } }, o),
      'AccessDenied',
    );
    await expectCode(
      app.encrypt(ref, bytes('x'), { context: { tenant: 'b', env: 'prod' } }, o),
      'AccessDenied',
    );
    await expectCode(app.encrypt(ref, bytes('x'), {}, o), 'AccessDenied');
  });

  it('contextSubset: the call context must contain the pairs and may carry more', async () => {
    const { owner, app, ref } = await setup();
    await owner.createGrant(
      ref,
      {
        grantee: 'app',
        operations: ['generate_data_key', 'decrypt'],
        constraints: { contextSubset: { tenant: 'a' } },
      },
      o,
    );
    const dk = await app.generateDataKey(ref, { context: { tenant: 'a', file: 'f1' } }, o);
    await app.decrypt(ref, dk.wrapped, { context: { tenant: 'a', file: 'f1' } }, o);
    await expectCode(app.generateDataKey(ref, { context: { tenant: 'b', file: 'f1' } }, o), 'AccessDenied');
    await expectCode(app.generateDataKey(ref, { context: { file: 'f1' } }, o), 'AccessDenied');
    await expectCode(app.generateDataKey(ref, {}, o), 'AccessDenied');
  });

  it('expiry is honoured to the millisecond, and expired grants disappear from the list', async () => {
    const { owner, app, ref, clock } = await setup();
    const expiresAt = new Date(clock.current.getTime() + 60_000);
    const grant = await owner.createGrant(ref, { grantee: 'app', operations: ['encrypt'], expiresAt }, o);
    expect(grant.expiresAt).toEqual(expiresAt);
    clock.advanceMs(59_999);
    await app.encrypt(ref, bytes('x'), {}, o);
    expect((await collect(owner.listGrants(ref, o))).map((g) => g.id)).toEqual([grant.id]);
    clock.advanceMs(1);
    await expectCode(app.encrypt(ref, bytes('x'), {}, o), 'AccessDenied');
    expect(await collect(owner.listGrants(ref, o))).toEqual([]);
  });

  it('revokeGrant removes access at once; unknown grant ids are NotFound', async () => {
    const { owner, app, ref } = await setup();
    const grant = await owner.createGrant(ref, { grantee: 'app', operations: ['encrypt'] }, o);
    await app.encrypt(ref, bytes('x'), {}, o);
    await owner.revokeGrant(ref, grant.id, o);
    await expectCode(app.encrypt(ref, bytes('x'), {}, o), 'AccessDenied');
    await expectCode(owner.revokeGrant(ref, grant.id, o), 'NotFound');
  });

  it('grants are created per the state table, but listed and revoked in every state', async () => {
    const { owner, ref, clock } = await setup();
    const grant = () => owner.createGrant(ref, { grantee: 'app', operations: ['encrypt'] }, o);
    const first = await grant();
    const second = await grant();
    await owner.scheduleKeyDeletion(ref, { days: 7 }, o);
    await expectCode(grant(), 'KeyStateConflict');
    expect((await collect(owner.listGrants(ref, o))).length).toBe(2);
    // Taking access away is never blocked by the key's state.
    await owner.revokeGrant(ref, first.id, o);
    clock.advanceDays(8);
    expect((await owner.describeKey(ref, o)).state).toBe('destroyed');
    await expectCode(grant(), 'KeyStateConflict');
    expect((await collect(owner.listGrants(ref, o))).map((g) => g.id)).toEqual([second.id]);
    await owner.revokeGrant(ref, second.id, o);
    expect(await collect(owner.listGrants(ref, o))).toEqual([]);
  });

  it('__proto__ and constructor as grantee and grant name are ordinary strings', async () => {
    const { owner, path, ref, clock } = await setup();
    for (const name of ['__proto__', 'constructor']) {
      const g = await owner.createGrant(ref, { grantee: name, operations: ['encrypt', 'decrypt'], name }, o);
      expect(g).toMatchObject({ grantee: name, name });
      const user = await open({ path, principal: name, clock: clock.now });
      const { ciphertext } = await user.encrypt(ref, bytes(name), {}, o);
      expect(text((await user.decrypt(ref, ciphertext, {}, o)).plaintext)).toBe(name);
      await expectCode(user.createKey({ name: 'mine', spec: 'AES_256' }, o), 'AccessDenied');
    }
    const reopened = await open({ path, clock: clock.now });
    expect((await collect(reopened.listGrants(ref, o))).map((g) => [g.grantee, g.name])).toEqual([
      ['__proto__', '__proto__'],
      ['constructor', 'constructor'],
    ]);
  });

  it('a grant never overrides key state', async () => {
    const { owner, app, ref } = await setup();
    await owner.createGrant(ref, { grantee: 'app', operations: ['encrypt'] }, o);
    await owner.disableKey(ref, o);
    await expectCode(app.encrypt(ref, bytes('x'), {}, o), 'KeyStateConflict');
  });

  it('grants on signing and MAC keys', async () => {
    const { owner, app } = await setup();
    const ec = { uri: (await owner.createKey({ name: 'ec', spec: 'EC_P384' }, o)).uri };
    const hm = { uri: (await owner.createKey({ name: 'hm', spec: 'HMAC_256' }, o)).uri };
    await owner.createGrant(ec, { grantee: 'app', operations: ['verify'] }, o);
    await owner.createGrant(hm, { grantee: 'app', operations: ['mac'] }, o);
    const sig = await owner.sign(ec, bytes('m'), {}, o);
    expect(await app.verify(ec, bytes('m'), sig.signature, { algorithm: 'ECDSA_SHA_384' }, o)).toBe(true);
    await expectCode(app.sign(ec, bytes('m'), {}, o), 'AccessDenied');
    const tag = await app.mac(hm, bytes('m'), o);
    await expectCode(app.verifyMac(hm, bytes('m'), tag.mac, o), 'AccessDenied');
  });

  it('validates grant requests', async () => {
    const { owner, ref, clock } = await setup();
    const bad = [
      { grantee: '', operations: ['encrypt'] },
      { grantee: 'has space', operations: ['encrypt'] },
      { grantee: 'app', operations: [] },
      { grantee: 'app', operations: ['sign'] },
      { grantee: 'app', operations: ['launch'] },
      { grantee: 'app', operations: ['describe'], constraints: { contextEquals: { a: '1' } } },
      {
        grantee: 'app',
        operations: ['encrypt'],
        constraints: { contextEquals: { a: '1' }, contextSubset: { a: '1' } },
      },
      { grantee: 'app', operations: ['encrypt'], expiresAt: new Date(clock.current.getTime() - 1) },
      { grantee: 'app', operations: ['encrypt'], expiresAt: new Date(Number.NaN) },
    ];
    for (const req of bad) {
      await expectCode(
        owner.createGrant(ref, req as Parameters<typeof owner.createGrant>[1], o),
        'InvalidArgument',
      );
    }
    expect(await collect(owner.listGrants(ref, o))).toEqual([]);
  });
});

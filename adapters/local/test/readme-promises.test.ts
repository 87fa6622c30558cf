/**
 * Promises the README makes that no other test file pins down, one test per promise, named after
 * it. Each runs the real provider against a real keystore file.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { acquireLock } from '../src/file-lock.js';
import { localKeystore } from '../src/index.js';
import { deriveKeys, readHeader, unseal } from '../src/sealed-file.js';
import {
  bytes,
  collect,
  expectCode,
  FakeClock,
  newKeystore,
  o,
  open,
  PASSPHRASE,
  tempDir,
  tempKeystorePath,
  text,
} from './helpers.js';

describe('README promises of @keyport/local', () => {
  it('the passphrase is its UTF-8 bytes, not normalised: another Unicode spelling is AccessDenied', async () => {
    const composed = 'caf\u00e9 au lait'; // é as one code point (NFC)
    const decomposed = composed.normalize('NFD'); // e + combining acute: looks the same
    expect(decomposed).not.toBe(composed);
    const { kp, path } = await newKeystore({ passphrase: composed });
    const key = await kp.createKey({ name: 'k', spec: 'AES_256' }, o);
    // The same UTF-8 bytes given as bytes open it ...
    const asBytes = await open({ path, passphrase: new TextEncoder().encode(composed) });
    expect((await asBytes.describeKey({ uri: key.uri }, o)).state).toBe('enabled');
    // ... the other spelling is another passphrase.
    await expectCode(open({ path, passphrase: decomposed }), 'AccessDenied');
  });

  it('localKeystore: a damaged file fails that call (Integrity) and the next call tries again', async () => {
    const path = await tempKeystorePath();
    const made = await open({ path, create: true });
    const key = await made.createKey({ name: 'k', spec: 'AES_256' }, o);
    await made.close();
    const good = await readFile(path);
    const damaged = Buffer.from(good);
    const at = damaged.length - 40; // inside the sealed body: the digest no longer matches
    damaged.writeUInt8((damaged.readUInt8(at) ^ 0xff) & 0xff, at);
    await writeFile(path, damaged);
    const kp = localKeystore({ path, passphrase: PASSPHRASE });
    try {
      await expectCode(kp.describeKey({ uri: key.uri }, o), 'Integrity');
      await writeFile(path, good); // repaired (a backup put back)
      expect((await kp.describeKey({ uri: key.uri }, o)).state).toBe('enabled');
      expect(kp.principal).toBe('owner');
    } finally {
      await kp.close();
    }
  });

  it('create on an existing keystore opens it as usual: its keys are kept, nothing is replaced', async () => {
    const { kp, path } = await newKeystore({ principal: 'admin' });
    const key = await kp.createKey({ name: 'k', spec: 'AES_256' }, o);
    const sealed = await kp.encrypt({ uri: key.uri }, bytes('kept'), {}, o);
    const before = await readFile(path);
    const again = await open({ path, create: true, principal: 'someone-else' });
    // The existing owner stays the owner: the new principal is not made owner of a new file.
    await expectCode(again.describeKey({ uri: key.uri }, o), 'AccessDenied');
    const owner = await open({ path, create: true });
    expect(owner.principal).toBe('admin');
    expect(text((await owner.decrypt({ uri: key.uri }, sealed.ciphertext, {}, o)).plaintext)).toBe('kept');
    expect((await readFile(path)).equals(before)).toBe(true);
  });

  it('create on an existing keystore takes no write lock: it opens while a live writer holds the lock', async () => {
    // Before: create took the write lock even for a file that existed, so a keystore in a
    // read-only directory or mount (no lock file can be made there: Unavailable) or one whose
    // lock a live writer held (Timeout) could not be opened with `create: true` at all.
    const { kp, path } = await newKeystore();
    const key = await kp.createKey({ name: 'k', spec: 'AES_256' }, o);
    const sealed = await kp.encrypt({ uri: key.uri }, bytes('kept'), {}, o);
    const held = await acquireLock(path, { timeoutMs: 1_000 });
    try {
      const again = await open({ path, create: true, lockTimeoutMs: 100 });
      expect(text((await again.decrypt({ uri: key.uri }, sealed.ciphertext, {}, o)).plaintext)).toBe('kept');
      const lazy = localKeystore({ path, passphrase: PASSPHRASE, create: true, lockTimeoutMs: 100 });
      try {
        expect((await lazy.describeKey({ uri: key.uri }, o)).state).toBe('enabled');
      } finally {
        await lazy.close();
      }
    } finally {
      await held.release();
    }
    // A missing keystore is still created under its lock: it waits for it, and gives up.
    const missing = `${path}.new`;
    const heldNew = await acquireLock(missing, { timeoutMs: 1_000 });
    try {
      await expectCode(open({ path: missing, create: true, lockTimeoutMs: 100 }), 'Timeout');
    } finally {
      await heldNew.release();
    }
  });

  it('a relative path is resolved when the provider is made: a later chdir moves neither reads nor writes', async () => {
    // Before: the path stayed relative, so after a chdir every call went to a file of that name
    // in the new directory: here another project's keystore under the same passphrase, which got
    // the new key, while the provider's own key was NotFound.
    const home = await tempDir();
    const elsewhere = await tempDir();
    const cwd = process.cwd();
    try {
      process.chdir(home);
      const kp = await open({ path: 'app.keystore', create: true });
      const lazy = localKeystore({ path: 'app.keystore', passphrase: PASSPHRASE });
      const key = await kp.createKey({ name: 'orders', spec: 'AES_256' }, o);
      process.chdir(elsewhere);
      const other = await open({ path: 'app.keystore', create: true });
      await other.createKey({ name: 'other', spec: 'AES_256' }, o);
      const { ciphertext } = await kp.encrypt({ uri: key.uri }, bytes('m'), {}, o);
      await kp.createKey({ name: 'added', spec: 'AES_256' }, o);
      const names = async (p: typeof kp) => (await collect(p.listKeys(o))).map((k) => k.uri.split('#')[1]);
      expect(await names(kp)).toEqual(['orders', 'added']);
      expect(await names(other)).toEqual(['other']);
      try {
        // Made before the chdir, opened after it: the same file.
        expect(text((await lazy.decrypt({ uri: key.uri }, ciphertext, {}, o)).plaintext)).toBe('m');
      } finally {
        await lazy.close();
      }
      // The URI the provider hands out, and the same file by its absolute path, name its key.
      expect(key.uri).toBe('local://app.keystore#orders');
      const absolute = `local://${join(home, 'app.keystore')}#orders`;
      expect((await kp.describeKey({ uri: absolute }, o)).state).toBe('enabled');
    } finally {
      process.chdir(cwd);
    }
  });

  it('a clock answering a Date outside 1970..9999 makes the call InvalidArgument, writing nothing', async () => {
    const { kp, path } = await newKeystore();
    await kp.createKey({ name: 'k', spec: 'AES_256' }, o);
    const before = await readFile(path);
    for (const when of [new Date('1969-12-31T23:59:59.999Z'), new Date('+010000-01-01T00:00:00.000Z')]) {
      const user = await open({ path, clock: () => when });
      const error = await user.createKey({ name: 'k2', spec: 'AES_256' }, o).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'InvalidArgument', message: expect.stringContaining('clock') });
    }
    expect((await readFile(path)).equals(before)).toBe(true);
  });

  it('getPublicKey: the owner, or a principal holding a verify grant; anyone else is AccessDenied', async () => {
    const { kp: owner, path } = await newKeystore({ principal: 'admin' });
    const ec = { uri: (await owner.createKey({ name: 'ec', spec: 'EC_P256' }, o)).uri };
    const spki = await owner.getPublicKey(ec, o);
    await owner.createGrant(ec, { grantee: 'verifier', operations: ['verify'] }, o);
    await owner.createGrant(ec, { grantee: 'describer', operations: ['describe'] }, o);
    const verifier = await open({ path, principal: 'verifier' });
    expect(Buffer.from(await verifier.getPublicKey(ec, o)).equals(Buffer.from(spki))).toBe(true);
    await expectCode((await open({ path, principal: 'describer' })).getPublicKey(ec, o), 'AccessDenied');
    await expectCode((await open({ path, principal: 'stranger' })).getPublicKey(ec, o), 'AccessDenied');
  });

  it('reads take no lock: a live writer holding the lock does not hold up encrypt, decrypt, describe or list', async () => {
    const { kp, path } = await newKeystore({ lockTimeoutMs: 200 });
    const key = await kp.createKey({ name: 'k', spec: 'AES_256' }, o);
    const ref = { uri: key.uri };
    // A lock held by a live process of this host (this one, created now): never stale. A read that
    // took it would end in Timeout after lockTimeoutMs, as the write below does.
    const held = await acquireLock(path, { timeoutMs: 1_000 });
    try {
      const reader = await open({ path, lockTimeoutMs: 200 });
      const { ciphertext } = await reader.encrypt(ref, bytes('m'), { context: { a: 'b' } }, o);
      expect(text((await reader.decrypt(ref, ciphertext, { context: { a: 'b' } }, o)).plaintext)).toBe('m');
      expect((await reader.describeKey(ref, o)).state).toBe('enabled');
      expect(await collect(reader.listKeys(o))).toHaveLength(1);
      // A write does wait for it (the lock is real), and gives up.
      await expectCode(reader.createKey({ name: 'k2', spec: 'AES_256' }, o), 'Timeout');
    } finally {
      await held.release();
    }
  });

  it('release deletes the lock only if it still holds our nonce', async () => {
    const path = await tempKeystorePath();
    const held = await acquireLock(path, { timeoutMs: 1_000 });
    // Someone else's lock now stands where ours was (ours was broken and taken over).
    const theirs = JSON.stringify({ pid: 1, host: hostname(), nonce: 'theirs', createdAt: new Date() });
    await writeFile(`${path}.lock`, theirs);
    await held.release();
    expect(await readFile(`${path}.lock`, 'utf8')).toBe(theirs);
  });

  it('expired grants are removed from the file on the next write', async () => {
    const clock = new FakeClock();
    const { kp, path } = await newKeystore({ clock: clock.now });
    const key = await kp.createKey({ name: 'k', spec: 'AES_256' }, o);
    const expiresAt = new Date(clock.current.getTime() + 60_000);
    await kp.createGrant({ uri: key.uri }, { grantee: 'app', operations: ['encrypt'], expiresAt }, o);
    await kp.createGrant({ uri: key.uri }, { grantee: 'keeps', operations: ['encrypt'] }, o);
    const storedGrantees = async () => {
      const raw = await readFile(path);
      const header = readHeader(raw);
      const keys = await deriveKeys(Buffer.from(PASSPHRASE), header.params, header.salt);
      const body = JSON.parse(unseal(raw, keys).toString('utf8')) as {
        keys: Array<{ grants: Array<{ grantee: string }> }>;
      };
      return body.keys.flatMap((k) => k.grants.map((g) => g.grantee));
    };
    expect(await storedGrantees()).toEqual(['app', 'keeps']);
    clock.advanceMs(60_000);
    await kp.createKey({ name: 'other', spec: 'HMAC_256' }, o); // a write touching another key
    expect(await storedGrantees()).toEqual(['keeps']);
  });

  it('the state table: which lifecycle calls disabled, pending_import and pending_deletion keys take', async () => {
    const { kp } = await newKeystore();
    const grant = { grantee: 'app', operations: ['describe' as const] };
    // disabled: rotation policy, schedule deletion, destroy old version, grants
    const d = { uri: (await kp.createKey({ name: 'd', spec: 'AES_256' }, o)).uri };
    await kp.rotateKey(d, o);
    await kp.disableKey(d, o);
    expect((await kp.setRotationPolicy(d, { periodDays: 30 }, o)).rotation?.periodDays).toBe(30);
    expect((await kp.createGrant(d, grant, o)).grantee).toBe('app');
    expect((await kp.destroyKeyVersion({ ...d, version: '1' }, o)).versions?.[0]?.state).toBe('destroyed');
    await expectCode(kp.rotateKey(d, o), 'KeyStateConflict');
    expect((await kp.scheduleKeyDeletion(d, {}, o)).state).toBe('pending_deletion');
    // pending_deletion: cancelKeyDeletion only
    await expectCode(kp.setRotationPolicy(d, { periodDays: 30 }, o), 'KeyStateConflict');
    await expectCode(kp.destroyKeyVersion({ ...d, version: '1' }, o), 'KeyStateConflict');
    // pending_import: import parameters, schedule deletion, grants; no enable, disable or policy
    const p = { uri: (await kp.createKey({ name: 'p', spec: 'AES_256', external: true }, o)).uri };
    await expectCode(kp.enableKey(p, o), 'KeyStateConflict');
    await expectCode(kp.disableKey(p, o), 'KeyStateConflict');
    await expectCode(kp.setRotationPolicy(p, {}, o), 'KeyStateConflict');
    expect((await kp.createGrant(p, grant, o)).grantee).toBe('app');
    expect((await kp.getImportParameters(p, {}, o)).importToken).toHaveLength(32);
    expect((await kp.scheduleKeyDeletion(p, { days: 7 }, o)).state).toBe('pending_deletion');
  });

  it('verify uses the pinned version, else the primary one: pin keyVersion to verify across rotations', async () => {
    const { kp } = await newKeystore();
    const ec = { uri: (await kp.createKey({ name: 'ec', spec: 'EC_P256' }, o)).uri };
    const signed = await kp.sign(ec, bytes('m'), {}, o);
    expect(signed.keyVersion).toBe('1');
    const pinned = { ...ec, version: '1' };
    await kp.rotateKey(ec, o);
    const algorithm = { algorithm: 'ECDSA_SHA_256' as const };
    expect(await kp.verify(ec, bytes('m'), signed.signature, algorithm, o)).toBe(false);
    expect(await kp.verify(pinned, bytes('m'), signed.signature, algorithm, o)).toBe(true);
  });
});

/**
 * Promises the local provider once broke, one test each: returned grants are copies, a queued
 * write honours its signal, the sealed body is checked field by field (usage fits spec, version
 * fits a ciphertext), a due rotation that cannot be written does not stop encrypt/decrypt, and a
 * rotation date without a period is refused rather than dropped.
 */
import { unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import {
  bytes,
  collect,
  expectCode,
  FakeClock,
  keystoreWithBody,
  newKeystore,
  o,
  open,
  text,
} from './helpers.js';

describe('the local provider keeps its promises', () => {
  it('a returned grant does not alias the stored one: changing its constraints changes no access', async () => {
    const { kp: owner, path } = await newKeystore({ principal: 'admin' });
    const key = await owner.createKey({ name: 'shared', spec: 'AES_256' }, o);
    const ref = { uri: key.uri };
    const app = await open({ path, principal: 'app' });
    const created = await owner.createGrant(
      ref,
      { grantee: 'app', operations: ['encrypt'], constraints: { contextEquals: { tenant: 'acme' } } },
      o,
    );
    // A careless caller reuses the returned maps (say, to build a context for another tenant).
    (created.constraints?.contextEquals as Record<string, string>).tenant = 'evil';
    const [listed] = await collect(owner.listGrants(ref, o));
    (listed?.constraints?.contextEquals as Record<string, string>).extra = 'x';
    expect((await collect(owner.listGrants(ref, o)))[0]?.constraints).toEqual({
      contextEquals: { tenant: 'acme' },
    });
    // The next write persists what the keystore holds, not the caller's edits.
    await owner.createKey({ name: 'other', spec: 'AES_256' }, o);
    const reopened = await open({ path, principal: 'app' });
    await expectCode(reopened.encrypt(ref, bytes('x'), { context: { tenant: 'evil' } }, o), 'AccessDenied');
    const ct = await app.encrypt(ref, bytes('ok'), { context: { tenant: 'acme' } }, o);
    expect(
      text((await owner.decrypt(ref, ct.ciphertext, { context: { tenant: 'acme' } }, o)).plaintext),
    ).toBe('ok');
  });

  it('a write queued behind another writer of the same process stops when its signal fires', async () => {
    const { kp, path } = await newKeystore({ lockTimeoutMs: 3_000 });
    // A lock of a live writer on another host: never broken, so the first write waits it out.
    await writeFile(
      `${path}.lock`,
      JSON.stringify({
        pid: 1,
        host: `${hostname()}-other`,
        nonce: 'n',
        createdAt: new Date().toISOString(),
      }),
    );
    const first = kp.createKey({ name: 'a', spec: 'AES_256' }, o).catch((e: unknown) => e);
    const started = Date.now();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await expectCode(kp.createKey({ name: 'b', spec: 'AES_256' }, { signal: controller.signal }), 'Aborted');
    expect(Date.now() - started).toBeLessThan(1_500);
    // The first write still times out on its own, and a later one still waits its turn.
    await first;
    await unlink(`${path}.lock`);
    await kp.createKey({ name: 'c', spec: 'AES_256' }, o);
    expect((await collect(kp.listKeys(o))).map((k) => k.uri.split('#')[1])).toEqual(['c']);
  });

  it('a sealed body whose key usage does not fit its spec is Integrity at open, not a raw OpenSSL error later', async () => {
    const path = await keystoreWithBody({ spec: 'HMAC_256' }, (b) => {
      (b.keys[0] as Record<string, unknown>).usage = 'encrypt_decrypt';
    });
    await expectCode(open({ path }), 'Integrity');
  });

  it('a sealed body with a key version beyond 2^32-1 is Integrity at open, not undecryptable ciphertexts', async () => {
    const path = await keystoreWithBody({ spec: 'AES_256' }, (b) => {
      const key = b.keys[0] as Record<string, unknown> & { versions: Array<Record<string, unknown>> };
      (key.versions[0] as Record<string, unknown>).version = 2 ** 32;
      key.primaryVersion = 2 ** 32;
    });
    await expectCode(open({ path }), 'Integrity');
  });

  it('a due automatic rotation that cannot be written does not stop encrypt and decrypt', async () => {
    // A keystore mounted read-only, or a writer stuck holding the lock: housekeeping fails.
    const clock = new FakeClock();
    const { kp: owner, path } = await newKeystore({ clock: clock.now });
    const key = await owner.createKey({ name: 'k', spec: 'AES_256', rotation: { periodDays: 90 } }, o);
    const ref = { uri: key.uri };
    const before = await owner.encrypt(ref, bytes('before'), {}, o);
    await writeFile(
      `${path}.lock`,
      JSON.stringify({
        pid: 1,
        host: `${hostname()}-other`,
        nonce: 'n',
        createdAt: new Date().toISOString(),
      }),
    );
    clock.advanceDays(91);
    const app = await open({ path, clock: clock.now, lockTimeoutMs: 100 });
    expect(text((await app.decrypt(ref, before.ciphertext, {}, o)).plaintext)).toBe('before');
    const after = await app.encrypt(ref, bytes('after'), {}, o);
    expect(after.keyVersion).toBe('1');
    expect(text((await app.decrypt(ref, after.ciphertext, {}, o)).plaintext)).toBe('after');
    // Once the keystore can be written again, the next use rotates.
    await unlink(`${path}.lock`);
    expect((await app.encrypt(ref, bytes('x'), {}, o)).keyVersion).toBe('2');
    // The caller's own abort still wins over the fallback.
    await writeFile(
      `${path}.lock`,
      JSON.stringify({
        pid: 1,
        host: `${hostname()}-other`,
        nonce: 'n',
        createdAt: new Date().toISOString(),
      }),
    );
    clock.advanceDays(91);
    const slow = await open({ path, clock: clock.now, lockTimeoutMs: 5_000 });
    await expectCode(
      slow.decrypt(ref, before.ciphertext, {}, { signal: AbortSignal.timeout(50) }),
      'Timeout',
    );
  });

  it('a rotation date without a period is refused, never turning rotation off (createKey, setRotationPolicy)', async () => {
    const { kp } = await newKeystore();
    const nextRotationAt = new Date(Date.now() + 5 * 86_400_000);
    await expectCode(
      kp.createKey({ name: 'dated', spec: 'AES_256', rotation: { nextRotationAt } }, o),
      'InvalidArgument',
    );
    await kp.createKey({ name: 'dated', spec: 'AES_256' }, o); // nothing was made under the name
    const key = await kp.createKey({ name: 'rotating', spec: 'AES_256', rotation: { periodDays: 30 } }, o);
    await expectCode(kp.setRotationPolicy({ uri: key.uri }, { nextRotationAt }, o), 'InvalidArgument');
    expect((await kp.describeKey({ uri: key.uri }, o)).rotation?.periodDays).toBe(30);
  });
});

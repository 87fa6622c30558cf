/**
 * Contexts and grant constraints are plain string maps (issue #21 point 6): `__proto__`,
 * `constructor` and `toString` are ordinary keys, a Map is as good as an object, and a
 * constraint is never dropped on the way to the keystore file and back.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { Keyport } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { advanceRotation } from '../src/key-state.js';
import type { StoredKey } from '../src/model.js';
import { deriveKeys, readHeader, seal, unseal } from '../src/sealed-file.js';
import { bytes, expectCode, newKeystore, o, open, PASSPHRASE, text } from './helpers.js';

/** A context object holding `__proto__` as an own key (what a careless `ctx[k] = v` loses). */
function ownProto(value: string, extra: Record<string, string> = {}): Record<string, string> {
  const c = Object.create(null) as Record<string, string>;
  Object.defineProperty(c, '__proto__', { value, enumerable: true, writable: true, configurable: true });
  return Object.assign(c, extra);
}

describe('plain string maps', () => {
  it('two tenants: a grant constrained on __proto__=x lets its tenant in and keeps the other out', async () => {
    const { kp: owner, path } = await newKeystore({ principal: 'admin' });
    const key = await owner.createKey({ name: 'shared', spec: 'AES_256' }, o);
    const ref = { uri: key.uri };
    const tenantA = await owner.encrypt(ref, bytes('tenant a'), { context: ownProto('x') }, o);
    const tenantB = await owner.encrypt(ref, bytes('tenant b'), { context: { tenant: 'b' } }, o);
    // Through the client, with the constraint given as a Map.
    const keyport = new Keyport({ providers: [owner] });
    await keyport.createGrant(key.uri, {
      grantee: 'tenant-a',
      operations: ['decrypt'],
      constraints: { contextSubset: new Map([['__proto__', 'x']]) as unknown as Record<string, string> },
    });
    // The constraint survived the trip through the sealed file.
    const [stored] = await (async () => {
      const out = [];
      for await (const g of owner.listGrants(ref, o)) out.push(g);
      return out;
    })();
    expect(Object.entries(stored?.constraints?.contextSubset ?? {})).toEqual([['__proto__', 'x']]);

    const app = await open({ path, principal: 'tenant-a' });
    const opened = await app.decrypt(
      ref,
      tenantA.ciphertext,
      { context: new Map([['__proto__', 'x']]) as unknown as Record<string, string> },
      o,
    );
    expect(text(opened.plaintext)).toBe('tenant a');
    await expectCode(app.decrypt(ref, tenantB.ciphertext, { context: { tenant: 'b' } }, o), 'AccessDenied');
    await expectCode(app.decrypt(ref, tenantB.ciphertext, {}, o), 'AccessDenied');
    await expectCode(app.decrypt(ref, tenantA.ciphertext, { context: ownProto('y') }, o), 'AccessDenied');
  });

  it('constructor and toString are ordinary context keys, bound like any other', async () => {
    const { kp } = await newKeystore();
    const key = await kp.createKey({ name: 'k', spec: 'AES_256' }, o);
    const context = { constructor: 'a', toString: 'b' } as unknown as Record<string, string>;
    const { ciphertext } = await kp.encrypt({ uri: key.uri }, bytes('hi'), { context }, o);
    const again = new Map([
      ['toString', 'b'],
      ['constructor', 'a'],
    ]);
    expect(
      text(
        (
          await kp.decrypt(
            { uri: key.uri },
            ciphertext,
            { context: again as unknown as Record<string, string> },
            o,
          )
        ).plaintext,
      ),
    ).toBe('hi');
    await expectCode(kp.decrypt({ uri: key.uri }, ciphertext, {}, o), 'InvalidCiphertext');
  });

  it('labels are plain maps too: a Map is stored, __proto__ kept', async () => {
    const { kp } = await newKeystore();
    const info = await kp.createKey(
      {
        name: 'k',
        spec: 'AES_256',
        labels: new Map([['__proto__', 'team']]) as unknown as Record<string, string>,
      },
      o,
    );
    expect(Object.entries(info.labels)).toEqual([['__proto__', 'team']]);
  });
});

describe('dates', () => {
  it('advancing a rotation due at the start of time is O(1), not one step per period', () => {
    const key = { rotationPeriodDays: 1, nextRotationAt: new Date(-8.64e15).toISOString() } as StoredKey;
    const now = new Date('2030-01-01T12:00:00.000Z');
    const started = performance.now();
    advanceRotation(key, now);
    expect(performance.now() - started).toBeLessThan(50);
    const next = new Date(key.nextRotationAt as string);
    expect(next > now).toBe(true);
    expect(next.getTime() - now.getTime()).toBeLessThanOrEqual(86_400_000);
    // Still on the schedule: a whole number of periods after the first due date.
    expect((next.getTime() + 8.64e15) % 86_400_000).toBe(0);
  });

  it('a sealed body holding a date outside 1970..9999 is Integrity at open, quickly', async () => {
    const { kp, path } = await newKeystore();
    await kp.createKey({ name: 'k', spec: 'AES_256', rotation: { periodDays: 1 } }, o);
    const file = await readFile(path);
    const header = readHeader(file);
    const keys = await deriveKeys(Buffer.from(PASSPHRASE), header.params, header.salt);
    const body = JSON.parse(unseal(file, keys).toString('utf8')) as { keys: Array<Record<string, unknown>> };
    (body.keys[0] as Record<string, unknown>).nextRotationAt = new Date(-8.64e15).toISOString();
    await writeFile(path, seal(Buffer.from(JSON.stringify(body)), keys));
    const started = performance.now();
    await expectCode(open({ path }), 'Integrity');
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(
      createHash('sha256')
        .update(await readFile(path))
        .digest('hex'),
    ).toBeTruthy();
  });
});

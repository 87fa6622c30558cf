/**
 * Verification happens before the write: an object whose rewrapped message does not open with
 * the target key alone is never written back, so it never loses its source key's EDK to a
 * rewrap that was not verified. Single uploads and multipart / block / resumable ones, on all
 * three emulators.
 */
import { randomBytes } from 'node:crypto';
import { type KeyOperations, KeyportError } from '@keyport/core';
import { openEnvelope, sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseObjectLocation } from '../src/location.js';
import { migrateObject } from '../src/migrate-object.js';
import { countHeaders } from '../src/status.js';
import type { ObjectStore } from '../src/store.js';
import { runShard } from '../src/worker.js';
import { type TestKeys, testKeys } from './helpers/keys.js';
import { EMULATORS, endpointsFor, freshBucket, readAll } from './helpers/stores.js';

let k: TestKeys;
beforeAll(async () => {
  k = await testKeys();
});
afterAll(async () => {
  await k?.close();
});

/**
 * `k.keys` with `change` applied to its encrypt or decrypt calls on the target key: a KMS (or a
 * proxy in front of it) whose wraps for the target do not unwrap, or a migrator that may encrypt
 * under the target key but not decrypt (a least-privilege key policy).
 */
function targetKeys(change: 'corruptWrap' | 'refuseUnwrap'): KeyOperations {
  // The envelope encrypts under the key's URI and decrypts under the version its EDK names
  // (`local://…?version=1#target`).
  const isTarget = (key: unknown) => typeof key === 'string' && key.replace(/\?[^#]*/, '') === k.to;
  return new Proxy(k.keys, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      const call = (...args: unknown[]): unknown => (v as (...a: unknown[]) => unknown).apply(target, args);
      if (prop === 'encrypt' && change === 'corruptWrap')
        return async (...args: unknown[]) => {
          const out = (await call(...args)) as { ciphertext: Uint8Array; keyVersion: string | undefined };
          if (!isTarget(args[0])) return out;
          const ciphertext = Uint8Array.from(out.ciphertext);
          ciphertext[ciphertext.length - 1] = (ciphertext.at(-1) as number) ^ 1;
          return { ...out, ciphertext };
        };
      if (prop === 'decrypt' && change === 'refuseUnwrap')
        return async (...args: unknown[]) => {
          if (isTarget(args[0]))
            throw new KeyportError('AccessDenied', 'not allowed to decrypt under the target key');
          return call(...args);
        };
      return call;
    },
  });
}

describe.each(EMULATORS)('verification before the write on %s', (emulator) => {
  let bucket: string;
  let store: ObjectStore;
  beforeAll(async () => {
    bucket = await freshBucket(emulator);
    // The smallest part size each service takes, so a 6 MiB object goes up in parts everywhere.
    store = parseObjectLocation(bucket, {
      ...endpointsFor(emulator),
      partSize: emulator === 'azurite' ? 1024 * 1024 : 5 * 1024 * 1024,
    }).store;
  });

  const seal = (pt: Uint8Array) =>
    sealEnvelope(pt, { recipients: [k.from], keys: k.keys, frameLength: 64 * 1024 });

  it.each([
    ['single upload', 100_000],
    ['multipart upload', 6 * 1024 * 1024],
  ])(
    'a target wrap that does not unwrap fails the object and leaves it as it was (%s)',
    async (_, size) => {
      const pt = randomBytes(size);
      const msg = Buffer.from(await seal(pt));
      const key = `corrupt-${size}`;
      await store.put(key, msg);
      await expect(
        migrateObject(store, key, { from: k.from, to: k.to, keys: targetKeys('corruptWrap'), verify: true }),
      ).rejects.toBeInstanceOf(KeyportError);
      const now = await readAll((await store.get(key)).body);
      // Still the original: it opens with the source key, as before the run.
      expect(now.equals(msg)).toBe(true);
      expect(
        Buffer.from((await openEnvelope(now, { trust: [k.from], keys: k.keys })).plaintext).equals(pt),
      ).toBe(true);
    },
    60_000,
  );

  it('a run whose target key cannot be opened writes nothing; a later run with access migrates and verifies', async () => {
    const prefix = 'run/';
    for (let i = 0; i < 3; i++) await store.put(`${prefix}o${i}`, await seal(Buffer.from(`object ${i}`)));
    const location = { store, prefix };
    const first = await runShard({
      location,
      from: k.from,
      to: k.to,
      keys: targetKeys('refuseUnwrap'),
      verify: 'all',
    });
    expect(first.counts).toMatchObject({ listed: 3, failed: 3, migrated: 0 });
    expect(new Set(first.failures.map((f) => f.code))).toEqual(new Set(['AccessDenied']));
    // Nothing was written: every object is still under the source key alone, so the next run
    // does not take an unverified rewrap for a finished one.
    expect(await countHeaders(store, prefix, k.from, k.to)).toEqual({
      target: 0,
      source: 3,
      both: 0,
      other: 0,
      vanished: 0,
      vanishedSeen: [],
    });
    const second = await runShard({ location, from: k.from, to: k.to, keys: k.keys, verify: 'all' });
    expect(second.counts).toMatchObject({ listed: 3, failed: 0, migrated: 3, verified: 3, already: 0 });
    expect(await countHeaders(store, prefix, k.from, k.to)).toEqual({
      target: 3,
      source: 0,
      both: 0,
      other: 0,
      vanished: 0,
      vanishedSeen: [],
    });
  }, 60_000);
});

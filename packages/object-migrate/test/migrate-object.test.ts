/** One object at a time: the header decides, the write is conditional, a concurrent writer wins. */
import { randomBytes } from 'node:crypto';
import { openEnvelope, sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseObjectLocation } from '../src/location.js';
import { migrateObject } from '../src/migrate-object.js';
import type { ObjectStore } from '../src/store.js';
import { type TestKeys, testKeys } from './helpers/keys.js';
import { EMULATORS, endpointsFor, freshBucket, readAll } from './helpers/stores.js';

let k: TestKeys;
beforeAll(async () => {
  k = await testKeys();
});
afterAll(async () => {
  await k?.close();
});

describe.each(EMULATORS)('migrateObject on %s', (emulator) => {
  let store: ObjectStore;
  const seal = (pt: Uint8Array, frameLength = 4096) =>
    sealEnvelope(pt, { recipients: [k.from], keys: k.keys, frameLength, context: { app: 'test' } });
  beforeAll(async () => {
    store = parseObjectLocation(await freshBucket(emulator), {
      ...endpointsFor(emulator),
      partSize: 5 * 1024 * 1024,
    }).store;
  });

  it('rewraps to the target only, body untouched, attributes kept, verified; a second run finds it done', async () => {
    const pt = randomBytes(100_000);
    const msg = await seal(pt);
    await store.put('a', msg, {
      attributes: { contentType: 'application/octet-stream', metadata: { owner: 'x' }, tags: { t: '1' } },
    });
    const out = await migrateObject(store, 'a', { from: k.from, to: k.to, keys: k.keys, verify: true });
    expect(out).toMatchObject({ outcome: 'migrated', verified: true, conflicts: 0 });
    const got = await store.get('a');
    const bytes = await readAll(got.body);
    expect(got.contentType).toBe('application/octet-stream');
    expect({ ...got.metadata }).toEqual({ owner: 'x' });
    if (emulator !== 'fake-gcs-server') expect({ ...got.tags }).toEqual({ t: '1' });
    expect(Buffer.from((await openEnvelope(bytes, { trust: [k.to], keys: k.keys })).plaintext)).toEqual(pt);
    await expect(openEnvelope(bytes, { trust: [k.from], keys: k.keys })).rejects.toThrow();
    // The body after the header is byte-identical.
    expect(bytes.subarray(bytes.length - 50_000)).toEqual(Buffer.from(msg.subarray(msg.length - 50_000)));
    expect(await migrateObject(store, 'a', { from: k.from, to: k.to, keys: k.keys })).toMatchObject({
      outcome: 'already',
    });
  });

  it('skips what is not an envelope or not sealed for the source, leaving it as it was', async () => {
    await store.put('plain', Buffer.from('hello'));
    await store.put('empty', Buffer.alloc(0));
    expect(await migrateObject(store, 'plain', { from: k.from, to: k.to, keys: k.keys })).toMatchObject({
      outcome: 'skipped',
    });
    expect(await migrateObject(store, 'empty', { from: k.from, to: k.to, keys: k.keys })).toMatchObject({
      outcome: 'skipped',
    });
    expect((await readAll((await store.get('plain')).body)).toString()).toBe('hello');
  });

  it('a concurrent overwrite between read and write is kept: reported as a conflict, then its own content migrated', async () => {
    await store.put('race', await seal(Buffer.from('old content')));
    const newer = await seal(Buffer.from('newer content by another writer'));
    const conflicts: string[] = [];
    let raced = false;
    const out = await migrateObject(store, 'race', {
      from: k.from,
      to: k.to,
      keys: k.keys,
      verify: true,
      onConflict: (key) => conflicts.push(key),
      beforeWrite: async () => {
        if (raced) return;
        raced = true;
        await store.put('race', newer);
      },
    });
    expect(out).toMatchObject({ outcome: 'migrated', conflicts: 1 });
    expect(conflicts).toEqual(['race']);
    const bytes = await readAll((await store.get('race')).body);
    const opened = await openEnvelope(bytes, { trust: [k.to], keys: k.keys });
    expect(Buffer.from(opened.plaintext).toString()).toBe('newer content by another writer');
  });

  it('timeoutMs reaches every KMS call: the unwrap, the wrap and the verifying opens', async () => {
    await store.put('deadline', await seal(randomBytes(1000)));
    const seen: Array<[string, unknown]> = [];
    const keys = new Proxy(k.keys, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => {
          seen.push([String(prop), (args.at(-1) as { timeoutMs?: unknown } | undefined)?.timeoutMs]);
          return v.apply(target, args);
        };
      },
    });
    const out = await migrateObject(store, 'deadline', {
      from: k.from,
      to: k.to,
      keys,
      verify: true,
      timeoutMs: 4321,
    });
    expect(out).toMatchObject({ outcome: 'migrated', verified: true });
    // The rewrap's unwrap and wrap, then three opens: the source as read, the rewrapped message
    // before its upload completes, the written object (the opens run alongside each other).
    expect(seen.map(([m]) => m).sort()).toEqual(['decrypt', 'decrypt', 'decrypt', 'decrypt', 'encrypt']);
    for (const [method, timeoutMs] of seen) expect(timeoutMs, method).toBe(4321);
  });

  it('a tampered message fails with a typed error and the stored object is left as it was', async () => {
    // A tampered body: rewrap copies frames without decrypting, so only verification sees it,
    // and it sees it before the write completes.
    const msg = Buffer.from(await seal(randomBytes(50_000)));
    msg[msg.length - 100] = (msg[msg.length - 100] as number) ^ 1;
    await store.put('bad', msg);
    await expect(
      migrateObject(store, 'bad', { from: k.from, to: k.to, keys: k.keys, verify: true }),
    ).rejects.toMatchObject({ code: 'Integrity' });
    expect((await readAll((await store.get('bad')).body)).equals(msg)).toBe(true);
    // A tampered header: rewrap itself refuses it.
    const head = Buffer.from(await seal(randomBytes(1000)));
    head[40] = (head[40] as number) ^ 1;
    await store.put('bad-head', head);
    await expect(
      migrateObject(store, 'bad-head', { from: k.from, to: k.to, keys: k.keys }),
    ).rejects.toMatchObject({
      code: 'InvalidCiphertext',
    });
    expect((await readAll((await store.get('bad-head')).body)).equals(head)).toBe(true);
  });

  it('a large tampered message under verification fails typed, without hanging the upload', async () => {
    // The copy opened for verification stops at the bad frame while the upload still pulls.
    const msg = Buffer.from(await seal(randomBytes(6 * 1024 * 1024), 64 * 1024));
    msg[200_000] = (msg[200_000] as number) ^ 1;
    await store.put('bad-large', msg);
    await expect(
      migrateObject(store, 'bad-large', { from: k.from, to: k.to, keys: k.keys, verify: true }),
    ).rejects.toMatchObject({ code: 'Integrity' });
    expect((await readAll((await store.get('bad-large')).body)).equals(msg)).toBe(true);
  }, 30_000);

  it('a large object goes up in parts and opens with the target key', async () => {
    const pt = randomBytes(12 * 1024 * 1024);
    await store.put('large', await seal(pt, 1024 * 1024));
    expect(
      await migrateObject(store, 'large', { from: k.from, to: k.to, keys: k.keys, verify: true }),
    ).toMatchObject({
      outcome: 'migrated',
      verified: true,
    });
    const bytes = await readAll((await store.get('large')).body);
    expect(
      Buffer.from((await openEnvelope(bytes, { trust: [k.to], keys: k.keys })).plaintext).equals(pt),
    ).toBe(true);
  }, 60_000);
});

/**
 * An object stored compressed (`Content-Encoding: gzip`) is migrated byte for byte as stored or
 * not at all: a store that handed back the decompressed bytes would have the migration write them
 * under the same `Content-Encoding: gzip`, an object no reader can open. On the real emulators.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { openEnvelope, sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseObjectLocation } from '../src/location.js';
import { migrateObject } from '../src/migrate-object.js';
import { type TestKeys, testKeys } from './helpers/keys.js';
import { EMULATORS, endpointsFor, freshBucket, readAll } from './helpers/stores.js';

let k: TestKeys;
beforeAll(async () => {
  k = await testKeys();
});
afterAll(async () => {
  await k?.close();
});

const empty = { metadata: {}, tags: {} };

describe.each(EMULATORS)('an envelope stored gzip-encoded, on %s', (emulator) => {
  it('is read as stored: skipped as not an envelope, left exactly as it was', async () => {
    const { store } = parseObjectLocation(`${await freshBucket(emulator)}/`, endpointsFor(emulator));
    const plaintext = Buffer.from('compressed plaintext');
    const stored = gzipSync(await sealEnvelope(plaintext, { recipients: [k.from], keys: k.keys }));
    await store.put('z', stored, { attributes: { ...empty, contentEncoding: 'gzip' } });
    const outcome = await migrateObject(store, 'z', { from: k.from, to: k.to, keys: k.keys });
    const after = await store.get('z');
    expect(after.contentEncoding).toBe('gzip');
    const bytes = await readAll(after.body);
    expect(Buffer.compare(bytes, stored)).toBe(0);
    // Still what it says it is: gzip of the message sealed for the source key.
    const opened = await openEnvelope(gunzipSync(bytes), { trust: [k.from], keys: k.keys });
    expect(Buffer.from(opened.plaintext).toString()).toBe('compressed plaintext');
    expect(outcome).toMatchObject({ outcome: 'skipped' });
  }, 30_000);
});

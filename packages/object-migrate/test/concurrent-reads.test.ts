/**
 * A large object read slowly (its upload waits on the read) while the other lanes of the same
 * worker cancel their reads after the header, as they do for objects already migrated or not
 * envelopes at all. The large read must not be cut by the others' cancels: one attempt, no
 * failure. On each emulator, through the real stores (only counted).
 */
import { randomBytes } from 'node:crypto';
import { openEnvelope, sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseObjectLocation } from '../src/location.js';
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

const SMALL = 40;

describe.each(EMULATORS)('concurrent reads on %s', (emulator) => {
  it('a large object held open while other lanes cancel reads migrates in one attempt', async () => {
    const uri = `${await freshBucket(emulator)}/c/`;
    const endpoints = { ...endpointsFor(emulator), partSize: 5 * 1024 * 1024 };
    const real = parseObjectLocation(uri, endpoints).store;
    const pt = randomBytes(24 * 1024 * 1024);
    await real.put(
      'c/big',
      await sealEnvelope(pt, { recipients: [k.from], keys: k.keys, frameLength: 1024 * 1024 }),
    );
    // Not envelopes: each read is cancelled after its first bytes.
    for (let i = 0; i < SMALL; i++) await real.put(`c/plain-${i}`, randomBytes(256 * 1024));
    let smallReads = 0;
    const store: ObjectStore = {
      ...real,
      list: (p, s) => real.list(p, s),
      async get(key, signal) {
        const read = await real.get(key, signal);
        if (key.startsWith('c/plain-')) smallReads++;
        return read;
      },
      put: (key, body, o) => real.put(key, body, o),
    };
    let bigAttempts = 0;
    const report = await runShard({
      location: { store, prefix: 'c/' },
      from: k.from,
      to: k.to,
      keys: k.keys,
      concurrency: 4,
      journalEveryMs: 50,
      // The big object's read is open (its header taken, the rest waiting) until every small
      // object has been read and cancelled by the other lanes.
      beforeWrite: async (key) => {
        if (key !== 'c/big') return;
        bigAttempts++;
        while (smallReads < SMALL) await new Promise((r) => setTimeout(r, 20));
        await new Promise((r) => setTimeout(r, 200));
      },
    });
    expect(report.failures).toEqual([]);
    expect(report.counts).toMatchObject({ listed: SMALL + 1, migrated: 1, skipped: SMALL, failed: 0 });
    expect(bigAttempts).toBe(1);
    const opened = await openEnvelope(await readAll((await real.get('c/big')).body), {
      trust: [k.to],
      keys: k.keys,
    });
    expect(Buffer.from(opened.plaintext).equals(pt)).toBe(true);
  }, 120_000);
});

/**
 * The worker migrates while it lists: objects are taken from the listing as lanes free up, so
 * what it holds is the listing's page and the objects in flight, not the shard. Checked on a
 * real moto bucket, the store only instrumented (it counts; every call goes to S3).
 */
import { KeyportError } from '@keyport/core';
import { sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseObjectLocation } from '../src/location.js';
import { countHeaders } from '../src/status.js';
import type { ObjectEntry, ObjectStore } from '../src/store.js';
import { runShard, selectionSample } from '../src/worker.js';
import { type TestKeys, testKeys } from './helpers/keys.js';
import { endpointsFor, freshBucket } from './helpers/stores.js';

let k: TestKeys;
beforeAll(async () => {
  k = await testKeys();
});
afterAll(async () => {
  await k?.close();
});

async function seeded(prefix: string, n: number): Promise<{ store: ObjectStore; uri: string }> {
  const uri = `${await freshBucket('moto')}/${prefix}`;
  const { store } = parseObjectLocation(uri, endpointsFor('moto'));
  for (let i = 0; i < n; i++) {
    const key = `${prefix}o${String(i).padStart(3, '0')}`;
    await store.put(
      key,
      await sealEnvelope(Buffer.from(`object ${i}`), { recipients: [k.from], keys: k.keys }),
    );
  }
  return { store, uri };
}

/** The real store with its listing and reads counted, and a listing that can fail after `failAfter` entries. */
function counted(real: ObjectStore, prefix: string, failAfter = Number.POSITIVE_INFINITY) {
  const seen = { listed: 0, started: 0, finished: 0, listedAtFirstRead: -1, maxAhead: 0 };
  const journal = (key: string) => key.startsWith(`${prefix}.keyport-migrate/`);
  const store: ObjectStore = {
    ...real,
    async *list(p, signal) {
      for await (const e of real.list(p, signal) as AsyncIterable<ObjectEntry>) {
        if (!journal(e.key) && seen.listed >= failAfter) {
          throw new KeyportError('Unavailable', 's3 list: connection reset', { provider: 's3' });
        }
        if (!journal(e.key)) seen.listed++;
        seen.maxAhead = Math.max(seen.maxAhead, seen.listed - seen.finished);
        yield e;
      }
    },
    async get(key, signal) {
      if (journal(key)) return real.get(key, signal);
      if (seen.started++ === 0) seen.listedAtFirstRead = seen.listed;
      return real.get(key, signal);
    },
    async put(key, body, o) {
      const out = await real.put(key, body, o);
      if (!journal(key)) seen.finished++;
      return out;
    },
    delete: (key, signal) => real.delete(key, signal),
  };
  return { store, seen };
}

describe('streaming listing', () => {
  it('starts migrating before the listing ends and holds no more than the objects in flight', async () => {
    const { store: real } = await seeded('s/', 30);
    const { store, seen } = counted(real, 's/');
    const report = await runShard({
      location: { store, prefix: 's/' },
      from: k.from,
      to: k.to,
      keys: k.keys,
      concurrency: 3,
    });
    expect(report.counts).toMatchObject({ listed: 30, migrated: 30, failed: 0 });
    expect(report.listingDone).toBe(true);
    // The first object was read when only the first lanes' objects had been taken from the listing.
    expect(seen.listedAtFirstRead).toBeGreaterThan(0);
    expect(seen.listedAtFirstRead).toBeLessThanOrEqual(3);
    // Taken from the listing but not yet written: never more than the lanes (plus the one being handed over).
    expect(seen.maxAhead).toBeLessThanOrEqual(4);
    expect(await countHeaders(real, 's/', k.from, k.to)).toEqual({
      target: 30,
      source: 0,
      both: 0,
      other: 0,
      vanished: 0,
      vanishedSeen: [],
    });
  }, 60_000);

  it('a listing that fails half-way: the objects already taken finish, the run fails typed, a re-run completes', async () => {
    const { store: real } = await seeded('f/', 12);
    const { store } = counted(real, 'f/', 5);
    await expect(
      runShard({ location: { store, prefix: 'f/' }, from: k.from, to: k.to, keys: k.keys, concurrency: 2 }),
    ).rejects.toMatchObject({ code: 'Unavailable' });
    // Exactly the five objects listed were migrated, completely; none of the rest was touched.
    expect(await countHeaders(real, 'f/', k.from, k.to)).toEqual({
      target: 5,
      source: 7,
      both: 0,
      other: 0,
      vanished: 0,
      vanishedSeen: [],
    });
    const again = await runShard({
      location: { store: real, prefix: 'f/' },
      from: k.from,
      to: k.to,
      keys: k.keys,
    });
    expect(again.counts).toMatchObject({ listed: 12, migrated: 7, already: 5, failed: 0 });
    expect(again.runs).toBe(2);
    expect(await countHeaders(real, 'f/', k.from, k.to)).toEqual({
      target: 12,
      source: 0,
      both: 0,
      other: 0,
      vanished: 0,
      vanishedSeen: [],
    });
  }, 60_000);

  it('verify sample:N opens exactly N objects of the shard with the target key', async () => {
    const { store } = await seeded('v/', 15);
    const report = await runShard({
      location: { store, prefix: 'v/' },
      from: k.from,
      to: k.to,
      keys: k.keys,
      verify: { sample: 4 },
    });
    expect(report.counts).toMatchObject({ listed: 15, migrated: 15, verified: 4 });
    const all = await runShard({
      location: { store: (await seeded('w/', 3)).store, prefix: 'w/' },
      from: k.from,
      to: k.to,
      keys: k.keys,
      verify: { sample: 10 },
    });
    // a sample larger than the shard verifies every object
    expect(all.counts).toMatchObject({ migrated: 3, verified: 3 });
  }, 60_000);
});

describe('selectionSample', () => {
  it('chooses exactly N of a known count, each object equally likely', () => {
    const trials = 20_000;
    const hits = new Array<number>(10).fill(0);
    for (let t = 0; t < trials; t++) {
      const pick = selectionSample(3, 10);
      let chosen = 0;
      for (let i = 0; i < 10; i++) {
        if (pick()) {
          chosen++;
          hits[i] = (hits[i] ?? 0) + 1;
        }
      }
      expect(chosen).toBe(3);
    }
    for (const h of hits) expect(Math.abs(h / trials - 0.3)).toBeLessThan(0.03);
  });

  it('objects beyond the count fill a short sample and never grow it past N', () => {
    const pick = selectionSample(3, 2, () => 0.999);
    expect(Array.from({ length: 6 }, () => pick())).toEqual([true, true, true, false, false, false]);
    const none = selectionSample(0, 5);
    expect(Array.from({ length: 5 }, () => none())).toEqual([false, false, false, false, false]);
  });
});

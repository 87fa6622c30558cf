/**
 * Journals live in the bucket, where anyone who can write objects can change them. A journal
 * that is malformed, of the wrong types, stored under another shard's name or far too large is
 * no journal: `status` reports its shard as missing instead of failing with a TypeError or taking
 * it at its word, and a worker reads at most MAX_JOURNAL_BYTES of it, then writes its own.
 */
import { sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOURNAL_FORMAT, type JournalState, MAX_JOURNAL_BYTES } from '../src/journal.js';
import { parseObjectLocation } from '../src/location.js';
import { countHeaders, migrationStatus } from '../src/status.js';
import type { ObjectRead, ObjectStore } from '../src/store.js';
import { runShard } from '../src/worker.js';
import { type TestKeys, testKeys } from './helpers/keys.js';
import { endpointsFor, freshBucket } from './helpers/stores.js';

let k: TestKeys;
beforeAll(async () => {
  k = await testKeys();
});
afterAll(async () => {
  await k?.close();
});

function state(index: number, count: number, over: Partial<JournalState> = {}): JournalState {
  return {
    format: JOURNAL_FORMAT,
    location: 's3://b/p/',
    from: 'local://a',
    to: 'local://b',
    shard: { index, count },
    startedAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:10.000Z',
    listingDone: true,
    finished: false,
    counts: {
      listed: 100,
      done: 40,
      migrated: 30,
      already: 5,
      skipped: 5,
      vanished: 0,
      failed: 2,
      conflicts: 1,
      verified: 0,
    },
    rate: 4,
    calls: { s3: { calls: 10, throttled: 0, rate: 1 } },
    failures: [{ key: 'p/x', code: 'Integrity', message: 'm' }],
    conflicts: [{ key: 'p/y', versionRead: '"e"' }],
    vanished: [],
    runs: 1,
    writer: 'w1',
    ...over,
  };
}

/** Newer than the real journal, so a merge that took it would let it decide the shard count. */
const LATER = '2026-01-01T00:05:00.000Z';

describe('tampered journals in the bucket', () => {
  const tampered: [string, string, unknown][] = [
    ['its format tag alone', 'shard-0-of-2.json', { format: JOURNAL_FORMAT }],
    ['JSON null', 'shard-0-of-2.json', null],
    ['an array', 'shard-0-of-2.json', []],
    [
      'a count that is a string',
      'shard-0-of-2.json',
      state(0, 2, { counts: { ...state(0, 2).counts, listed: '1e9' as never } }),
    ],
    ['a negative count', 'shard-0-of-2.json', state(0, 2, { counts: { ...state(0, 2).counts, done: -5 } })],
    ['updatedAt a number', 'shard-0-of-2.json', state(0, 2, { updatedAt: 9 as never })],
    ['no shard', 'shard-0-of-2.json', { ...state(0, 2), shard: undefined }],
    ['a shard index past its count', 'shard-0-of-2.json', state(0, 2, { shard: { index: 7, count: 2 } })],
    ['failures that are not a list', 'shard-0-of-2.json', state(0, 2, { failures: 'x' as never })],
    ['vanished objects that are not a list', 'shard-0-of-2.json', state(0, 2, { vanished: 'x' as never })],
    [
      'a vanished count that is a string',
      'shard-0-of-2.json',
      state(0, 2, { counts: { ...state(0, 2).counts, vanished: '3' as never } }),
    ],
    [
      'the journal of another shard, finished',
      'shard-3-of-4.json',
      state(0, 1, { finished: true, updatedAt: LATER }),
    ],
    [
      'another shard count under this name',
      'shard-0-of-2.json',
      state(0, 1, { finished: true, updatedAt: LATER }),
    ],
  ];

  it.each(tampered)(
    'status reports the shard of a journal holding %s as missing, without a TypeError',
    async (_, name, body) => {
      const bucket = await freshBucket('moto');
      const { store } = parseObjectLocation(`${bucket}/p/`, endpointsFor('moto'));
      await store.put(`p/.keyport-migrate/shard-1-of-2.json`, Buffer.from(JSON.stringify(state(1, 2))));
      await store.put(`p/.keyport-migrate/${name}`, Buffer.from(JSON.stringify(body)));
      const status = await migrationStatus({ store, prefix: 'p/' });
      expect(status.shards).toEqual({ expected: 2, reporting: 1, finished: 0, missing: [0] });
      expect(status).toMatchObject({ total: 100, done: 40, failed: 2, totalKnown: false });
    },
  );

  it('a journal written before vanished objects were counted is read as none vanished', async () => {
    const bucket = await freshBucket('moto');
    const { store } = parseObjectLocation(`${bucket}/p/`, endpointsFor('moto'));
    const old = JSON.parse(JSON.stringify(state(0, 1)));
    delete old.vanished;
    delete old.counts.vanished;
    await store.put('p/.keyport-migrate/shard-0-of-1.json', Buffer.from(JSON.stringify(old)));
    const status = await migrationStatus({ store, prefix: 'p/' });
    expect(status.shards).toEqual({ expected: 1, reporting: 1, finished: 0, missing: [] });
    expect(status).toMatchObject({
      total: 100,
      done: 40,
      failed: 2,
      vanished: 0,
      left: 58,
      vanishedSeen: [],
    });
  });

  it('a worker reads at most MAX_JOURNAL_BYTES of an oversized journal, migrates its shard and writes its own', async () => {
    const bucket = await freshBucket('moto');
    const real = parseObjectLocation(bucket, endpointsFor('moto')).store;
    const journalKey = 'p/.keyport-migrate/shard-0-of-1.json';
    for (const i of [0, 1, 2])
      await real.put(
        `p/o${i}`,
        await sealEnvelope(Buffer.from(`object ${i}`), { recipients: [k.from], keys: k.keys }),
      );
    // 3 × MAX_JOURNAL_BYTES: a JSON journal padded with spaces (parsed whole, it would be taken).
    const padded = Buffer.alloc(3 * MAX_JOURNAL_BYTES, 0x20);
    Buffer.from(JSON.stringify(state(0, 1, { runs: 41 }))).copy(padded);
    await real.put(journalKey, padded);
    let journalBytes = 0;
    const counting: ObjectStore = {
      ...real,
      list: (...a) => real.list(...a),
      put: (...a) => real.put(...a),
      delete: (...a) => real.delete(...a),
      async get(key, signal, beforeRequest): Promise<ObjectRead> {
        const read = await real.get(key, signal, beforeRequest);
        if (key !== journalKey) return read;
        return {
          ...read,
          body: (async function* () {
            for await (const c of read.body) {
              journalBytes += c.byteLength;
              yield c;
            }
          })(),
        };
      },
    };
    const report = await runShard({
      location: { store: counting, prefix: 'p/' },
      from: k.from,
      to: k.to,
      keys: k.keys,
    });
    expect(report.counts).toMatchObject({ listed: 3, migrated: 3, failed: 0 });
    // Not carried over from a journal that was not read: this run is the first it knows of.
    expect(report.runs).toBe(1);
    expect(journalBytes).toBeLessThanOrEqual(MAX_JOURNAL_BYTES + 1024 * 1024);
    expect((await migrationStatus({ store: real, prefix: 'p/' })).shards).toEqual({
      expected: 1,
      reporting: 1,
      finished: 1,
      missing: [],
    });
    expect(await countHeaders(real, 'p/', k.from, k.to)).toEqual({
      target: 3,
      source: 0,
      both: 0,
      other: 0,
      vanished: 0,
      vanishedSeen: [],
    });
  }, 60_000);
});

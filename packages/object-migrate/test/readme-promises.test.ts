/**
 * README promises that no other test pinned: `keepSource`, the shard an object belongs to, the
 * AWS Batch array size as the shard count, the journal's list of the first 100 failures, and the
 * 200-character cut of keys in text lines. Against the emulators, through runShard and the
 * command, as a user runs them.
 */
import { createHash, randomBytes } from 'node:crypto';
import { openEnvelope, sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateObjectsCommand } from '../src/command.js';
import { parseObjectLocation } from '../src/location.js';
import { shardFromEnv, shardOf } from '../src/shard.js';
import { migrationStatus } from '../src/status.js';
import type { ObjectStore } from '../src/store.js';
import { runShard } from '../src/worker.js';
import { type TestKeys, testKeys } from './helpers/keys.js';
import { endpointsFor, freshBucket, readAll } from './helpers/stores.js';

let k: TestKeys;
beforeAll(async () => {
  k = await testKeys();
});
afterAll(async () => {
  await k?.close();
});

const seal = async (pt: Uint8Array) =>
  Buffer.from(await sealEnvelope(pt, { recipients: [k.from], keys: k.keys, frameLength: 4096 }));

/** A message whose header no longer authenticates: the rewrap refuses it at once. */
const tamperedHeader = async () => {
  // The flipped byte lies in the stored context, which the header's tag covers.
  const m = Buffer.from(
    await sealEnvelope(randomBytes(500), { recipients: [k.from], keys: k.keys, context: { app: 'test' } }),
  );
  m[40] = (m[40] as number) ^ 1;
  return m;
};

const opens = async (store: ObjectStore, key: string, trust: string): Promise<Buffer> =>
  Buffer.from(
    (await openEnvelope(await readAll((await store.get(key)).body), { trust: [trust], keys: k.keys }))
      .plaintext,
  );

describe('keepSource (moto)', () => {
  it('keepSource: true leaves each object opening with the source key alone and the target key alone; a later run without it removes the source key', async () => {
    const uri = `${await freshBucket('moto')}/ks/`;
    const endpoints = endpointsFor('moto');
    const { store } = parseObjectLocation(uri, endpoints);
    const plain = new Map<string, Buffer>();
    for (let i = 0; i < 3; i++) {
      const pt = randomBytes(5000 + i);
      plain.set(`ks/${i}`, pt);
      await store.put(`ks/${i}`, await seal(pt));
    }
    const base = { location: uri, endpoints, from: k.from, to: k.to, keys: k.keys, verify: 'all' } as const;

    const kept = await runShard({ ...base, keepSource: true });
    expect(kept).toMatchObject({ counts: { migrated: 3, verified: 3, failed: 0 } });
    const versions = new Map<string, string>();
    for (const [key, pt] of plain) {
      expect(await opens(store, key, k.from), key).toEqual(pt);
      expect(await opens(store, key, k.to), key).toEqual(pt);
      versions.set(key, (await store.get(key)).version);
    }

    // Both keys there: done for a run that keeps the source, and nothing written.
    const again = await runShard({ ...base, keepSource: true });
    expect(again).toMatchObject({ counts: { migrated: 0, already: 3 } });
    for (const key of plain.keys()) expect((await store.get(key)).version, key).toBe(versions.get(key));

    // A run without it removes the source key's EDK.
    const removed = await runShard(base);
    expect(removed).toMatchObject({ counts: { migrated: 3, failed: 0 } });
    for (const [key, pt] of plain) {
      expect(await opens(store, key, k.to), key).toEqual(pt);
      await expect(opens(store, key, k.from), key).rejects.toThrow();
    }
  }, 60_000);
});

describe('shards', () => {
  /** The README's rule, spelt out independently of shardOf. */
  const rule = (key: string, count: number) =>
    Number(
      BigInt(`0x${createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 12)}`) % BigInt(count),
    );

  it('an object belongs to shard sha256(key)[0..6] mod count, and a worker migrates exactly its shard', async () => {
    for (const count of [1, 2, 3, 7, 1000, 10_000])
      for (const key of ['', 'a', 'k/1', 'k/2', 'é/ü', '😀', 'x'.repeat(1024)])
        expect(shardOf(key, count), `${key.slice(0, 10)} of ${count}`).toBe(rule(key, count));

    const uri = `${await freshBucket('fake-gcs-server')}/s/`;
    const endpoints = endpointsFor('fake-gcs-server');
    const { store } = parseObjectLocation(uri, endpoints);
    const keys = Array.from({ length: 12 }, (_, i) => `s/${i}`);
    for (const key of keys) await store.put(key, await seal(randomBytes(300)));
    const report = await runShard({
      location: uri,
      endpoints,
      from: k.from,
      to: k.to,
      keys: k.keys,
      shard: { index: 1, count: 3 },
    });
    const mine = keys.filter((key) => rule(key, 3) === 1);
    expect(mine.length).toBeGreaterThan(0);
    expect(report.counts).toMatchObject({ listed: mine.length, migrated: mine.length });
    for (const key of keys) {
      const bytes = await readAll((await store.get(key)).body);
      const underTarget = await openEnvelope(bytes, { trust: [k.to], keys: k.keys }).then(
        () => true,
        () => false,
      );
      expect(underTarget, key).toBe(mine.includes(key));
    }
  }, 60_000);

  it('an AWS Batch array job takes its shard count from AWS_BATCH_JOB_ARRAY_SIZE, KEYPORT_SHARD_COUNT first', () => {
    expect(shardFromEnv({ AWS_BATCH_JOB_ARRAY_INDEX: '2', AWS_BATCH_JOB_ARRAY_SIZE: '5' })).toEqual({
      index: 2,
      count: 5,
    });
    expect(
      shardFromEnv({
        AWS_BATCH_JOB_ARRAY_INDEX: '2',
        AWS_BATCH_JOB_ARRAY_SIZE: '5',
        KEYPORT_SHARD_COUNT: '3',
      }),
    ).toEqual({ index: 2, count: 3 });
    expect(
      shardFromEnv({ JOB_COMPLETION_INDEX: '1', JOB_COMPLETIONS: '5', KEYPORT_SHARD_COUNT: '2' }),
    ).toEqual({ index: 1, count: 2 });
  });
});

describe('the journal and the text lines (fake-gcs-server)', () => {
  it('the journal lists the first 100 failures and counts every one', async () => {
    const uri = `${await freshBucket('fake-gcs-server')}/f/`;
    const endpoints = endpointsFor('fake-gcs-server');
    const { store } = parseObjectLocation(uri, endpoints);
    const bad = await tamperedHeader();
    for (let i = 0; i < 103; i++) await store.put(`f/${String(i).padStart(3, '0')}`, bad);
    const report = await runShard({ location: uri, endpoints, from: k.from, to: k.to, keys: k.keys });
    expect(report).toMatchObject({ counts: { listed: 103, failed: 103 } });
    const status = await migrationStatus(parseObjectLocation(uri, endpoints));
    expect(status).toMatchObject({ total: 103, failed: 103 });
    expect(status.failures).toHaveLength(100);
    expect(new Set(status.failures.map((f) => f.key)).size).toBe(100);
  }, 120_000);

  it('a key in a text line is cut at 200 characters; the JSON result keeps it whole', async () => {
    const uri = `${await freshBucket('fake-gcs-server')}/t/`;
    const endpoints = endpointsFor('fake-gcs-server');
    const { store } = parseObjectLocation(uri, endpoints);
    const key = `t/${'a'.repeat(198)}${'b'.repeat(100)}`;
    await store.put(key, await tamperedHeader());
    const out = await migrateObjectsCommand(
      uri,
      { from: k.from, to: k.to, gcsEndpoint: endpoints.gcsEndpoint as string },
      { keys: k.keys },
    );
    expect(out.exitCode).toBe(1);
    expect(out.result).toMatchObject({ failures: [{ key }] });
    const failed = out.lines.filter((l) => l.startsWith('  failed '));
    expect(failed).toEqual([expect.stringContaining(`"t/${'a'.repeat(198)}…" (300 chars)`)]);
    expect(failed[0]).not.toContain('ab');
  }, 60_000);
});

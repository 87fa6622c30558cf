/**
 * An object that keeps failing does not end its shard: it is counted and listed as failed in
 * the shard's journal (so `status` shows it), the worker goes on with the others, the exit code
 * says something failed, and the next run tries it again. A journal that cannot be written for a
 * while does not stop the migration either; one that stays unwritable fails the run at the end.
 * On fake-gcs-server, through the real store (faults injected in front of it where a real
 * emulator cannot produce them on demand).
 */
import { randomBytes } from 'node:crypto';
import { KeyportError } from '@keyport/core';
import { sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateObjectsCommand, migrateObjectsStatusCommand } from '../src/command.js';
import { readObjectJournals } from '../src/journal.js';
import { parseObjectLocation } from '../src/location.js';
import { countHeaders, migrationStatus } from '../src/status.js';
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

const endpoints = () => endpointsFor('fake-gcs-server');
const seal = async (pt: Uint8Array) =>
  Buffer.from(await sealEnvelope(pt, { recipients: [k.from], keys: k.keys, frameLength: 4096 }));

async function seeded(prefix: string, n: number): Promise<{ uri: string; store: ObjectStore }> {
  const uri = `${await freshBucket('fake-gcs-server')}/${prefix}`;
  const { store } = parseObjectLocation(uri, endpoints());
  for (let i = 0; i < n; i++) await store.put(`${prefix}ok-${i}`, await seal(randomBytes(3000)));
  return { uri, store };
}

/** The real store, its calls passed through, except those `fail` picks. */
function faulty(real: ObjectStore, fail: (call: 'get' | 'put', key: string) => boolean): ObjectStore {
  const outage = (call: string, key: string) =>
    new KeyportError('Unavailable', `gs ${call} failed (injected outage for ${key})`, { provider: 'gs' });
  return {
    ...real,
    list: (p, s) => real.list(p, s),
    async get(key, signal) {
      if (fail('get', key)) throw outage('get', key);
      return real.get(key, signal);
    },
    async put(key, body, o) {
      if (fail('put', key)) throw outage('put', key);
      return real.put(key, body, o);
    },
    delete: (key, signal) => real.delete(key, signal),
  };
}

describe('failures on fake-gcs-server', () => {
  it('objects that keep failing are journalled as failed, the rest migrate, exit 1; the next run retries them', async () => {
    const { uri, store } = await seeded('p/', 8);
    // Real, permanent failures: a tampered body (seen by verification before the write
    // completes) and a tampered header (refused by the rewrap).
    const body = await seal(randomBytes(20_000));
    body[body.length - 100] = (body[body.length - 100] as number) ^ 1;
    const head = Buffer.from(
      await sealEnvelope(randomBytes(1000), { recipients: [k.from], keys: k.keys, context: { app: 'test' } }),
    );
    head[40] = (head[40] as number) ^ 1;
    await store.put('p/bad-body', body);
    await store.put('p/bad-head', head);
    const o = {
      from: k.from,
      to: k.to,
      verify: 'all',
      jobs: '2',
      gcsEndpoint: endpoints().gcsEndpoint as string,
    };

    const first = await migrateObjectsCommand(uri, o, { keys: k.keys });
    expect(first.exitCode).toBe(1);
    expect(first.result).toMatchObject({
      ok: false,
      finished: true,
      counts: { listed: 10, migrated: 8, done: 8, failed: 2 },
    });
    expect(first.lines.filter((l) => l.includes('failed "p/')).sort()).toEqual([
      expect.stringMatching(/^ {2}failed "p\/bad-body": Integrity /),
      expect.stringMatching(/^ {2}failed "p\/bad-head": InvalidCiphertext /),
    ]);
    // The journal has them, and so has status.
    const status = await migrateObjectsStatusCommand(uri, {
      gcsEndpoint: o.gcsEndpoint,
      headers: { from: k.from, to: k.to },
    });
    expect(status.result).toMatchObject({
      total: 10,
      done: 8,
      failed: 2,
      left: 0,
      headers: { target: 8, source: 2 },
    });
    expect((status.result.failures as { key: string }[]).map((f) => f.key).sort()).toEqual([
      'p/bad-body',
      'p/bad-head',
    ]);
    expect(status.lines[0]).toContain('8 done, 0 left, 2 failed of 10');
    // Not ok, as the run that wrote the journal said.
    expect(status.exitCode).toBe(1);
    expect(status.result).toMatchObject({ ok: false });
    // Left exactly as they were.
    expect((await readAll((await store.get('p/bad-body')).body)).equals(body)).toBe(true);
    expect((await readAll((await store.get('p/bad-head')).body)).equals(head)).toBe(true);

    // The next run tries them again (and again fails them); the migrated ones are done.
    const second = await migrateObjectsCommand(uri, o, { keys: k.keys });
    expect(second.exitCode).toBe(1);
    expect(second.result).toMatchObject({ runs: 2, counts: { already: 8, failed: 2 } });
    // Once their owner has replaced them with sound messages, a run migrates them.
    await store.put('p/bad-body', await seal(randomBytes(20_000)));
    await store.put('p/bad-head', await seal(randomBytes(1000)));
    const third = await migrateObjectsCommand(uri, o, { keys: k.keys });
    expect(third.exitCode).toBe(0);
    expect(third.result).toMatchObject({ counts: { already: 8, migrated: 2, failed: 0 } });
    const after = await migrateObjectsStatusCommand(uri, { gcsEndpoint: o.gcsEndpoint });
    expect(after.result).toMatchObject({ ok: true, done: 10, failed: 0, left: 0, failures: [] });
    expect(after.exitCode).toBe(0);
  }, 60_000);

  it('an object whose writes keep failing is failed after its attempts while the worker goes on', async () => {
    const { uri, store } = await seeded('q/', 12);
    await store.put('q/stuck', await seal(randomBytes(5000)));
    const loc = parseObjectLocation(uri, endpoints());
    let stuckPuts = 0;
    const report = await runShard({
      location: {
        store: faulty(store, (call, key) => call === 'put' && key === 'q/stuck' && ++stuckPuts > 0),
        prefix: 'q/',
      },
      from: k.from,
      to: k.to,
      keys: k.keys,
      concurrency: 3,
    });
    expect(report.counts).toMatchObject({ listed: 13, migrated: 12, failed: 1 });
    expect(report.failures).toEqual([
      { key: 'q/stuck', code: 'Unavailable', message: expect.stringContaining('q/stuck') },
    ]);
    expect(stuckPuts).toBe(6);
    const [journal] = await readObjectJournals(store, 'q/.keyport-migrate/');
    expect(journal).toMatchObject({ finished: true, counts: { failed: 1, migrated: 12 } });
    expect(await migrationStatus(loc)).toMatchObject({ done: 12, failed: 1, left: 0 });
    // The store is back: the next run takes the failed object again and migrates it.
    const again = await runShard({
      location: uri,
      endpoints: endpoints(),
      from: k.from,
      to: k.to,
      keys: k.keys,
    });
    expect(again.counts).toMatchObject({ already: 12, migrated: 1, failed: 0 });
    expect(await countHeaders(store, 'q/', k.from, k.to)).toEqual({
      target: 13,
      source: 0,
      both: 0,
      other: 0,
      vanished: 0,
      vanishedSeen: [],
    });
  }, 60_000);

  it('a journal that cannot be written for a while does not stop the migration', async () => {
    const { store } = await seeded('r/', 20);
    let journalPuts = 0;
    // After the first write (which takes the journal), the next six journal puts fail: one
    // journal write fails through all its attempts, and a later one lands.
    const down = (call: 'get' | 'put', key: string) =>
      call === 'put' && key.includes('.keyport-migrate/') && ++journalPuts > 1 && journalPuts <= 7;
    const report = await runShard({
      location: { store: faulty(store, down), prefix: 'r/' },
      from: k.from,
      to: k.to,
      keys: k.keys,
      concurrency: 2,
      journalEveryMs: 20,
      // Long enough for a journal write to fail through all its attempts (backoff up to 3.1 s).
      beforeWrite: () => new Promise((r) => setTimeout(r, 500)),
    });
    expect(report.counts).toMatchObject({ listed: 20, migrated: 20, failed: 0 });
    expect(journalPuts).toBeGreaterThan(7);
    const [journal] = await readObjectJournals(store, 'r/.keyport-migrate/');
    expect(journal).toMatchObject({ finished: true, counts: { migrated: 20, done: 20 } });
  }, 60_000);

  it('a journal write whose answer was lost keeps the journal, even when the look at it fails once', async () => {
    const { store } = await seeded('t/', 6);
    const journalKey = 't/.keyport-migrate/shard-0-of-1.json';
    let puts = 0;
    let gets = 0;
    const lossy: ObjectStore = {
      ...store,
      list: (p, sig) => store.list(p, sig),
      async get(key, signal) {
        // The look at the journal after the lost answer fails once, as a reset connection does.
        if (key === journalKey && puts >= 2 && gets++ === 0)
          throw new KeyportError('Unavailable', 'gs get failed (injected reset)', { provider: 'gs' });
        return store.get(key, signal);
      },
      async put(key, body, o) {
        const out = await store.put(key, body, o);
        // The second journal write lands, but its answer is lost.
        if (key === journalKey && ++puts === 2)
          throw new KeyportError('Unavailable', 'gs put failed (injected lost answer)', { provider: 'gs' });
        return out;
      },
      delete: (key, sig) => store.delete(key, sig),
    };
    const report = await runShard({
      location: { store: lossy, prefix: 't/' },
      from: k.from,
      to: k.to,
      keys: k.keys,
      journalEveryMs: 30,
      beforeWrite: () => new Promise((r) => setTimeout(r, 50)),
    });
    expect(report.counts).toMatchObject({ migrated: 6, failed: 0 });
    expect(gets).toBeGreaterThan(1);
    const [journal] = await readObjectJournals(store, 't/.keyport-migrate/');
    expect(journal).toMatchObject({ finished: true, writer: report.writer, counts: { migrated: 6 } });
  }, 60_000);

  it('a journal that stays unwritable fails the run once every object is dealt with', async () => {
    const { store } = await seeded('s/', 6);
    let journalPuts = 0;
    const down = (call: 'get' | 'put', key: string) =>
      call === 'put' && key.includes('.keyport-migrate/') && ++journalPuts > 1;
    await expect(
      runShard({
        location: { store: faulty(store, down), prefix: 's/' },
        from: k.from,
        to: k.to,
        keys: k.keys,
        journalEveryMs: 50,
      }),
    ).rejects.toMatchObject({ code: 'Unavailable' });
    expect(await countHeaders(store, 's/', k.from, k.to)).toMatchObject({ target: 6, source: 0 });
  }, 60_000);
});

/**
 * Objects sealed with `contextNotStored` (pairs the message authenticates without storing them)
 * migrate when the run is given those pairs back (`reproducedContext`): the rewrap and both opens
 * of the verification get them, the rewritten object still leaves them out, and they are written
 * nowhere (not the journal, the object or its metadata). An object bound to other pairs, or to
 * none, fails alone with the code `openEnvelope` gives it with the same pairs, and is left as it
 * was. A resumed run is judged by each object's header and its own pairs, so one given other
 * pairs (or none) neither skips nor mis-verifies anything. On the three emulators.
 */
import { randomBytes } from 'node:crypto';
import { type EncryptionContext, KeyportError } from '@keyport/core';
import { openEnvelope, sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateObjectsCommand } from '../src/command.js';
import { readObjectJournals } from '../src/journal.js';
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

const SECRET = 'u-secret-7f3';
const GIVEN = { user: SECRET };
const META = { owner: 'team-a' };

interface Sealed {
  readonly plaintext: Buffer;
  readonly bytes: Buffer;
}

/** Seals `plaintext` for the source key with `context`, the `notStored` keys left out. */
async function seal(
  context: EncryptionContext,
  notStored: readonly string[],
  suite: 0x0478 | 0x0578 = 0x0478,
  size = 20_000,
): Promise<Sealed> {
  const plaintext = randomBytes(size);
  const bytes = Buffer.from(
    await sealEnvelope(plaintext, {
      recipients: [k.from],
      keys: k.keys,
      context,
      suite,
      frameLength: 4096,
      ...(notStored.length > 0 ? { contextNotStored: notStored } : {}),
    }),
  );
  return { plaintext, bytes };
}

/** The code `openEnvelope` fails `bytes` with, under `trust`, given `reproduced` (or none). */
async function openCode(bytes: Uint8Array, trust: string, reproduced?: EncryptionContext): Promise<string> {
  try {
    await openEnvelope(bytes, {
      trust: [trust],
      keys: k.keys,
      ...(reproduced !== undefined ? { reproducedContext: reproduced } : {}),
    });
  } catch (e) {
    if (e instanceof KeyportError) return e.code;
    throw e;
  }
  return 'opened';
}

async function bytesOf(store: ObjectStore, key: string): Promise<Buffer> {
  return readAll((await store.get(key)).body);
}

/** Every object under the bucket, journal included, read whole: where the secret must not be. */
async function everything(store: ObjectStore): Promise<string> {
  const out: string[] = [];
  for await (const e of store.list('')) {
    const read = await store.get(e.key);
    out.push(e.key, JSON.stringify(read.metadata), JSON.stringify(read.tags));
    out.push((await readAll(read.body)).toString('latin1'));
  }
  return out.join('\n');
}

describe.each(EMULATORS)('reproducedContext on %s', (emulator) => {
  it('objects sealed with unstored pairs migrate with them (verified); an object bound to other pairs fails alone, untouched', async () => {
    const uri = `${await freshBucket(emulator)}/p/`;
    const { store } = parseObjectLocation(uri, endpointsFor(emulator));
    const good: Record<string, Sealed> = {
      'p/a': await seal({ table: 'orders', user: SECRET }, ['user']),
      // The signed suite: its public key is a stored aws-crypto- pair beside the unstored one.
      'p/b': await seal({ table: 'orders', user: SECRET }, ['user'], 0x0578),
    };
    const bad: Record<string, Sealed> = {
      // Another value of the unstored pair.
      'p/other-user': await seal({ table: 'orders', user: 'u-other' }, ['user']),
      // The pair stored, with another value (refused before any unwrap).
      'p/stored': await seal({ table: 'orders', user: 'u-stored' }, []),
      // No unstored pair at all: the given one was never bound to it.
      'p/plain': await seal({ table: 'orders' }, []),
    };
    for (const [key, s] of Object.entries({ ...good, ...bad }))
      await store.put(key, s.bytes, { attributes: { metadata: META, tags: {} } });
    const versions = new Map<string, string>();
    for (const e of [...Object.keys(bad)]) {
      const read = await store.get(e);
      read.cancel();
      versions.set(e, read.version);
    }

    const run = (reproducedContext?: EncryptionContext) =>
      runShard({
        location: uri,
        endpoints: endpointsFor(emulator),
        from: k.from,
        to: k.to,
        keys: k.keys,
        verify: 'all',
        concurrency: 2,
        ...(reproducedContext !== undefined ? { reproducedContext } : {}),
      });

    const first = await run(GIVEN);
    expect(first.counts).toMatchObject({ listed: 5, migrated: 2, verified: 2, failed: 3, already: 0 });
    expect(first.failures.map((f) => f.key).sort()).toEqual(Object.keys(bad).sort());
    for (const [key, s] of Object.entries(bad)) {
      // Its code is the one opening it with the same pairs gives; it is left exactly as it was.
      const failure = first.failures.find((f) => f.key === key);
      expect(failure?.code, key).toBe(await openCode(s.bytes, k.from, GIVEN));
      expect(failure?.code, key).toBe('InvalidCiphertext');
      expect(failure?.message).not.toContain(SECRET);
      const now = await store.get(key);
      expect(now.version, key).toBe(versions.get(key));
      expect((await readAll(now.body)).equals(s.bytes), key).toBe(true);
    }
    for (const [key, s] of Object.entries(good)) {
      const migrated = await bytesOf(store, key);
      // The unstored pair is still left out; the stored one is there.
      expect(migrated.includes(Buffer.from(SECRET)), key).toBe(false);
      expect(migrated.includes(Buffer.from('orders')), key).toBe(true);
      // Only the target opens it now, and only with the pair given back.
      const opened = await openEnvelope(migrated, { trust: [k.to], keys: k.keys, reproducedContext: GIVEN });
      expect(Buffer.from(opened.plaintext).equals(s.plaintext), key).toBe(true);
      expect(await openCode(migrated, k.to), key).toBe('InvalidCiphertext');
      expect(await openCode(migrated, k.to, { user: 'u-other' }), key).toBe('InvalidCiphertext');
      expect(await openCode(migrated, k.from, GIVEN), key).not.toBe('opened');
      const read = await store.get(key);
      read.cancel();
      expect(read.metadata).toEqual(META);
    }
    // Written nowhere: not the journal, not an object, not metadata or tags.
    const [journal] = await readObjectJournals(store, 'p/.keyport-migrate/');
    expect(journal).toMatchObject({ finished: true, counts: { migrated: 2, failed: 3 } });
    expect(await everything(store)).not.toContain(SECRET);

    // Without the pairs: the migrated ones are done (their header says so, no pair needed);
    // the stored and plain ones migrate; the other user's still fails, untouched.
    const second = await run();
    expect(second.counts).toMatchObject({ already: 2, migrated: 2, verified: 2, failed: 1 });
    expect(second.failures).toEqual([
      { key: 'p/other-user', code: 'InvalidCiphertext', message: expect.any(String) },
    ]);
    expect((await bytesOf(store, 'p/other-user')).equals(bad['p/other-user']?.bytes as Buffer)).toBe(true);
    // With its own pairs it migrates too.
    const third = await run({ user: 'u-other' });
    expect(third.counts).toMatchObject({ already: 4, migrated: 1, verified: 1, failed: 0 });
    const moved = await openEnvelope(await bytesOf(store, 'p/other-user'), {
      trust: [k.to],
      keys: k.keys,
      reproducedContext: { user: 'u-other' },
    });
    expect(Buffer.from(moved.plaintext).equals(bad['p/other-user']?.plaintext as Buffer)).toBe(true);
    expect(await countHeaders(store, 'p/', k.from, k.to)).toEqual({
      target: 5,
      source: 0,
      both: 0,
      other: 0,
      vanished: 0,
      vanishedSeen: [],
    });
  }, 120_000);
});

describe('reproducedContext across a resumed run (fake-gcs-server)', () => {
  it('a run stopped half-way and resumed with other pairs or none migrates nothing wrongly; with its pairs it finishes', async () => {
    const uri = `${await freshBucket('fake-gcs-server')}/r/`;
    const endpoints = endpointsFor('fake-gcs-server');
    const { store } = parseObjectLocation(uri, endpoints);
    const sealed = new Map<string, Sealed>();
    for (let i = 0; i < 6; i++) {
      const s = await seal({ user: SECRET, row: String(i) }, ['user'], 0x0478, 3000);
      sealed.set(`r/o${i}`, s);
      await store.put(`r/o${i}`, s.bytes);
    }
    const base = {
      location: uri,
      endpoints,
      from: k.from,
      to: k.to,
      keys: k.keys,
      verify: 'all' as const,
      concurrency: 1,
    };
    // The first run is stopped (as by a kill) after its second object's write.
    const stop = new AbortController();
    let writes = 0;
    await expect(
      runShard({
        ...base,
        reproducedContext: GIVEN,
        signal: stop.signal,
        beforeWrite: async () => {
          if (++writes === 3) stop.abort();
        },
      }),
    ).rejects.toMatchObject({ code: 'Aborted' });
    const headers = await countHeaders(store, 'r/', k.from, k.to);
    expect(headers.target).toBeGreaterThanOrEqual(2);
    expect(headers.source).toBeGreaterThan(0);
    const pending = [...sealed.keys()];
    const before = new Map<string, Buffer>();
    for (const key of pending) before.set(key, await bytesOf(store, key));

    // Resumed with other pairs, or none: the objects done are done (their headers say so); every
    // other one fails with the open's code and is not written. Nothing is counted migrated.
    for (const given of [{ user: 'u-wrong' }, undefined]) {
      const report = await runShard({
        ...base,
        ...(given !== undefined ? { reproducedContext: given } : {}),
      });
      expect(report.counts).toMatchObject({
        already: headers.target,
        migrated: 0,
        verified: 0,
        failed: headers.source,
      });
      expect(new Set(report.failures.map((f) => f.code))).toEqual(new Set(['InvalidCiphertext']));
      for (const key of pending)
        expect((await bytesOf(store, key)).equals(before.get(key) as Buffer)).toBe(true);
    }
    // Given the pairs again, it finishes: every object opens with the target and the pairs.
    const last = await runShard({ ...base, reproducedContext: GIVEN });
    expect(last.counts).toMatchObject({ already: headers.target, migrated: headers.source, failed: 0 });
    expect(last.runs).toBe(4);
    for (const [key, s] of sealed) {
      const opened = await openEnvelope(await bytesOf(store, key), {
        trust: [k.to],
        keys: k.keys,
        reproducedContext: GIVEN,
      });
      expect(Buffer.from(opened.plaintext).equals(s.plaintext), key).toBe(true);
    }
    expect(await everything(store)).not.toContain(SECRET);
  }, 120_000);

  it('the command takes the parsed pairs; a bad map is InvalidArgument naming the option before any call, never its value', async () => {
    const uri = `${await freshBucket('fake-gcs-server')}/c/`;
    const endpoints = endpointsFor('fake-gcs-server');
    const { store } = parseObjectLocation(uri, endpoints);
    const s = await seal({ user: SECRET }, ['user']);
    await store.put('c/o', s.bytes);
    const o = { from: k.from, to: k.to, verify: 'all', gcsEndpoint: endpoints.gcsEndpoint as string };
    for (const bad of [
      [SECRET],
      { user: 7 },
      { user: SECRET, '': SECRET },
      { 'aws-crypto-public-key': SECRET },
      'user=x',
    ]) {
      for (const call of [
        () => migrateObjectsCommand(uri, { ...o, reproducedContext: bad as never }, { keys: k.keys }),
        () => runShard({ location: uri, endpoints, from: k.from, to: k.to, reproducedContext: bad as never }),
        () => migrateObject(store, 'c/o', { from: k.from, to: k.to, reproducedContext: bad as never }),
      ]) {
        const error = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error, JSON.stringify(bad)).toBeInstanceOf(KeyportError);
        expect(error).toMatchObject({ code: 'InvalidArgument' });
        expect((error as Error).message).toContain('reproducedContext');
        expect((error as Error).message).not.toContain(SECRET);
      }
    }
    // Nothing was touched: no journal, the object as it was.
    const keys: string[] = [];
    for await (const e of store.list('')) keys.push(e.key);
    expect(keys).toEqual(['c/o']);
    expect((await bytesOf(store, 'c/o')).equals(s.bytes)).toBe(true);
    // An empty map is no pairs: such an object fails as without the option.
    const none = await migrateObjectsCommand(uri, { ...o, reproducedContext: {} }, { keys: k.keys });
    expect(none.exitCode).toBe(1);
    expect(none.lines.join('\n')).toMatch(/failed "c\/o": InvalidCiphertext/);
    const ok = await migrateObjectsCommand(uri, { ...o, reproducedContext: GIVEN }, { keys: k.keys });
    expect(ok.exitCode, ok.lines.join('\n')).toBe(0);
    expect(ok.result).toMatchObject({ ok: true, counts: { migrated: 1, verified: 1 } });
    expect(JSON.stringify(ok.result) + ok.lines.join('\n')).not.toContain(SECRET);
  }, 60_000);
});

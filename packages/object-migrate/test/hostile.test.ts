/**
 * What a careless or hostile caller gets: options that are NaN, infinite, negative, fractional,
 * strings, null, accessors or unknown are refused typed before anything is read or written (no
 * journal, no object touched); an AbortSignal that fires mid-run ends it as `Aborted` with every
 * object whole under one key or the other, and the re-run completes; object keys with `..`,
 * `/` runs, unicode, 1 KB names or `__proto__` are migrated under their own name and nothing
 * else is written. On the real emulators, through the package's own stores.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { KeyportError } from '@keyport/core';
import { openEnvelope, sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseObjectLocation } from '../src/location.js';
import { countHeaders } from '../src/status.js';
import type { ObjectStore } from '../src/store.js';
import { type RunShardOptions, runShard } from '../src/worker.js';
import { type TestKeys, testKeys } from './helpers/keys.js';
import { EMULATORS, endpointsFor, freshBucket, readAll } from './helpers/stores.js';

let k: TestKeys;
beforeAll(async () => {
  k = await testKeys();
});
afterAll(async () => {
  await k?.close();
});

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function keysUnder(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of store.list(prefix)) out.push(e.key);
  return out.sort();
}

describe('options a careless caller gives runShard', () => {
  let uri: string;
  let store: ObjectStore;
  beforeAll(async () => {
    uri = `${await freshBucket('moto')}/o/`;
    store = parseObjectLocation(uri, endpointsFor('moto')).store;
    for (let i = 0; i < 3; i++)
      await store.put(
        `o/${i}`,
        await sealEnvelope(Buffer.from(`v${i}`), { recipients: [k.from], keys: k.keys }),
      );
  });

  const base = (): RunShardOptions => ({
    location: uri,
    endpoints: endpointsFor('moto'),
    from: k.from,
    to: k.to,
    keys: k.keys,
  });
  const throwing = (name: string) => {
    const o: Record<string, unknown> = { ...base() };
    Object.defineProperty(o, name, {
      enumerable: true,
      get() {
        throw new Error('a getter that throws');
      },
    });
    return o;
  };
  const withOwnProto = (): Record<string, unknown> => ({
    ...base(),
    ...(JSON.parse('{"__proto__": {"concurrency": 0}}') as object),
  });

  const bad: [string, () => unknown][] = [
    ...[Number.NaN, Number.POSITIVE_INFINITY, -1, 0, 1.5, 65, '8', null].map((v): [string, () => unknown] => [
      `concurrency ${String(v)}`,
      () => ({ ...base(), concurrency: v }),
    ]),
    ...[Number.NaN, -1, 0, '8', null].map((v): [string, () => unknown] => [
      `maxRps ${String(v)}`,
      () => ({ ...base(), maxRps: v }),
    ]),
    ...[Number.NaN, Number.POSITIVE_INFINITY, -1, 0, 2 ** 31, '1000', null].map(
      (v): [string, () => unknown] => [
        `journalEveryMs ${String(v)}`,
        () => ({ ...base(), journalEveryMs: v }),
      ],
    ),
    ...[Number.NaN, -1, 0, 1.5, '100', null].map((v): [string, () => unknown] => [
      `timeoutMs ${String(v)}`,
      () => ({ ...base(), timeoutMs: v }),
    ]),
    ...[null, 'ALL', 'sample:3', { sample: Number.NaN }, { sample: 0 }, { sample: -1 }, { sample: 1.5 }].map(
      (v): [string, () => unknown] => [`verify ${JSON.stringify(v)}`, () => ({ ...base(), verify: v })],
    ),
    ...[
      { index: 2, count: 2 },
      { index: 0, count: 0 },
      { index: -1, count: 2 },
      { index: 0.5, count: 2 },
      { index: '0', count: '1' },
      null,
    ].map((v): [string, () => unknown] => [`shard ${JSON.stringify(v)}`, () => ({ ...base(), shard: v })]),
    ['from equal to to', () => ({ ...base(), to: k.from })],
    ['from not a key', () => ({ ...base(), from: 'not a key' })],
    ['to undefined', () => ({ ...base(), to: undefined })],
    ['keepSource "no"', () => ({ ...base(), keepSource: 'no' })],
    ['signal not a signal', () => ({ ...base(), signal: { aborted: false } })],
    ['a misspelt option (maxRPS)', () => ({ ...base(), maxRPS: 5 })],
    ['journalPrefix holding every object', () => ({ ...base(), journalPrefix: 'o/' })],
    ['journalPrefix empty', () => ({ ...base(), journalPrefix: '' })],
    // `o/j` would also leave out `o/jpeg/...`: objects no run migrates, counted nowhere.
    ['journalPrefix inside the location without a final "/"', () => ({ ...base(), journalPrefix: 'o/j' })],
    ['options null', () => null],
    ['options a string', () => 's3://b/p'],
    ['a getter that throws (concurrency)', () => throwing('concurrency')],
    ['a getter that throws (location)', () => throwing('location')],
    ['an own __proto__ key', withOwnProto],
  ];

  it.each(bad)('%s: InvalidArgument, nothing read or written', async (_name, options) => {
    const error = await runShard(options() as RunShardOptions).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KeyportError);
    expect(error).toMatchObject({ code: 'InvalidArgument' });
    // No journal was taken, no object touched.
    expect(await keysUnder(store, 'o/')).toEqual(['o/0', 'o/1', 'o/2']);
    expect(await countHeaders(store, 'o/', k.from, k.to)).toMatchObject({ source: 3, target: 0 });
  });

  it('the bounds themselves are accepted, and the run migrates', async () => {
    const report = await runShard({
      ...base(),
      concurrency: 64,
      maxRps: Number.POSITIVE_INFINITY,
      journalEveryMs: 2 ** 31 - 1,
      timeoutMs: 60_000,
      verify: { sample: 1 },
      shard: { index: 0, count: 1 },
    });
    expect(report.counts).toMatchObject({ listed: 3, migrated: 3, verified: 1, failed: 0 });
  });
});

describe.each(EMULATORS)('an AbortSignal that fires mid-run on %s', (emulator) => {
  it('ends the run as Aborted, leaves every object whole under one key, and the re-run completes', async () => {
    const uri = `${await freshBucket(emulator)}/a/`;
    // Small parts, so the large object is in the middle of a multipart / block / resumable upload
    // when the signal fires (S3 parts are at least 5 MiB).
    const partSize = emulator === 'moto' ? 5 * 1024 * 1024 : 256 * 1024;
    const endpoints = { ...endpointsFor(emulator), partSize };
    const { store } = parseObjectLocation(uri, endpoints);
    const want = new Map<string, string>();
    for (let i = 0; i < 12; i++) {
      const pt = randomBytes(2000 + i);
      await store.put(`a/o${i}`, await sealEnvelope(pt, { recipients: [k.from], keys: k.keys }));
      want.set(`a/o${i}`, sha(pt));
    }
    const big = randomBytes(partSize * 2 + 1000);
    await store.put(
      'a/big',
      await sealEnvelope(big, { recipients: [k.from], keys: k.keys, frameLength: 64 * 1024 }),
    );
    want.set('a/big', sha(big));

    const controller = new AbortController();
    // The real store; the signal fires once the large upload has sent more than a part.
    const firing: ObjectStore = {
      ...store,
      list: (p, s) => store.list(p, s),
      get: (key, s) => store.get(key, s),
      delete: (key, s) => store.delete(key, s),
      put(key, body, o) {
        if (key !== 'a/big' || body instanceof Uint8Array) return store.put(key, body, o);
        let sent = 0;
        const watched = (async function* () {
          for await (const chunk of body) {
            sent += chunk.length;
            if (sent > partSize + 10_000) controller.abort();
            yield chunk;
          }
        })();
        return store.put(key, watched, o);
      },
    };
    const error = await runShard({
      location: { store: firing, prefix: 'a/' },
      from: k.from,
      to: k.to,
      keys: k.keys,
      concurrency: 2,
      signal: controller.signal,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(controller.signal.aborted).toBe(true);
    expect(error).toBeInstanceOf(KeyportError);
    expect(error).toMatchObject({ code: 'Aborted' });
    // Whole: every object opens, under exactly one of the keys, to its plaintext.
    const headers = await countHeaders(store, 'a/', k.from, k.to);
    expect(headers.both + headers.other).toBe(0);
    expect(headers.source).toBeGreaterThan(0);
    for (const [key, digest] of want) {
      const bytes = await readAll((await store.get(key)).body);
      const opened = await openEnvelope(bytes, { trust: [k.from, k.to], keys: k.keys });
      expect(sha(opened.plaintext), key).toBe(digest);
    }
    // The re-run completes.
    const again = await runShard({ location: uri, endpoints, from: k.from, to: k.to, keys: k.keys });
    expect(again.counts).toMatchObject({ listed: 13, failed: 0, done: 13 });
    expect(await countHeaders(store, 'a/', k.from, k.to)).toEqual({
      target: 13,
      source: 0,
      both: 0,
      other: 0,
      vanished: 0,
      vanishedSeen: [],
    });
    for (const [key, digest] of want) {
      const opened = await openEnvelope(await readAll((await store.get(key)).body), {
        trust: [k.to],
        keys: k.keys,
      });
      expect(sha(opened.plaintext), key).toBe(digest);
    }
  }, 60_000);

  it('a signal aborted before the start, or with a reason of its own, is Aborted too', async () => {
    const uri = `${await freshBucket(emulator)}/b/`;
    const { store } = parseObjectLocation(uri, endpointsFor(emulator));
    await store.put('b/x', await sealEnvelope(Buffer.from('x'), { recipients: [k.from], keys: k.keys }));
    for (const reason of [undefined, 'operator said stop', new Error('shutting down')]) {
      const c = new AbortController();
      c.abort(reason);
      await expect(
        runShard({
          location: uri,
          endpoints: endpointsFor(emulator),
          from: k.from,
          to: k.to,
          keys: k.keys,
          signal: c.signal,
        }),
      ).rejects.toMatchObject({ code: 'Aborted' });
    }
    expect(await keysUnder(store, 'b/')).toEqual(['b/x']);
  });
});

describe.each(EMULATORS)('object keys a hostile writer chose, on %s', (emulator) => {
  it('each is migrated under its own name; nothing else is written', async () => {
    const uri = `${await freshBucket(emulator)}/h/`;
    const { store } = parseObjectLocation(uri, endpointsFor(emulator));
    // Names a URL path rewrites: on Azure the SDK would resolve the dot segments (and Azure takes
    // a backslash for `/`), reaching another blob, so the Azure store refuses them typed.
    const rewritten = ['h/a/../b', 'h/./c', 'h/back\\slash', 'h/..', 'h/a/./../..'];
    const names = [
      'h//x//y',
      'h/ünïcødé-😀-ㅎ',
      `h/${'k'.repeat(1000)}`,
      'h/__proto__',
      'h/constructor',
      'h/with space and %2F and ?q=1#frag',
      // Azurite stores a NUL but can no longer list the container (500): S3 and GCS only.
      ...(emulator === 'azurite' ? [] : [...rewritten, 'h/nul\0x']),
    ];
    if (emulator === 'azurite') {
      for (const name of rewritten) {
        await expect(store.put(name, Buffer.from('x')), name).rejects.toMatchObject({
          code: 'InvalidArgument',
        });
        await expect(store.get(name), name).rejects.toMatchObject({ code: 'InvalidArgument' });
        await expect(store.delete(name), name).rejects.toMatchObject({ code: 'InvalidArgument' });
      }
      expect(await keysUnder(store, '')).toEqual([]);
    }
    // The bucket outside the prefix holds an object a normalised `h/a/../b` would reach.
    await store.put('b', Buffer.from('outside the prefix'));
    const want = new Map<string, string>();
    for (const name of names) {
      const pt = Buffer.from(`plaintext of ${name}`);
      await store.put(name, await sealEnvelope(pt, { recipients: [k.from], keys: k.keys }));
      want.set(name, sha(pt));
    }
    expect(await keysUnder(store, 'h/')).toEqual([...names].sort());
    const report = await runShard({
      location: uri,
      endpoints: endpointsFor(emulator),
      from: k.from,
      to: k.to,
      keys: k.keys,
    });
    expect(report.failures).toEqual([]);
    expect(report.counts).toMatchObject({ listed: names.length, migrated: names.length, failed: 0 });
    for (const [name, digest] of want) {
      const opened = await openEnvelope(await readAll((await store.get(name)).body), {
        trust: [k.to],
        keys: k.keys,
      });
      expect(sha(opened.plaintext), name).toBe(digest);
    }
    const all = await keysUnder(store, '');
    expect(all.filter((key) => !key.startsWith('h/.keyport-migrate/'))).toEqual(['b', ...names].sort());
    expect((await readAll((await store.get('b')).body)).toString()).toBe('outside the prefix');
  }, 60_000);
});

describe('a storage service that never answers', () => {
  let server: Server;
  const sockets = new Set<Socket>();
  let port = 0;
  beforeAll(async () => {
    // Accepts connections and reads requests, never answers: a hung endpoint or load balancer.
    server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.resume();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server?.close(resolve));
  });

  const hung = (): [string, Record<string, string>][] => [
    ['s3://hung-bucket/p/', { s3Endpoint: `http://127.0.0.1:${port}`, s3Region: 'us-east-1' }],
    [
      'azblob://devstoreaccount1/hung/p/',
      {
        azureConnectionString: `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${Buffer.from('k'.repeat(64)).toString('base64')};BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`,
      },
    ],
    ['gs://hung-bucket/p/', { gcsEndpoint: `http://127.0.0.1:${port}`, gcsProjectId: 'keyport-test' }],
  ];

  it('a run with a signal ends as Aborted soon after the signal fires, on each store', async () => {
    for (const [location, endpoints] of hung()) {
      const started = Date.now();
      await expect(
        runShard({
          location,
          endpoints,
          from: k.from,
          to: k.to,
          keys: k.keys,
          signal: AbortSignal.timeout(500),
        }),
        location,
      ).rejects.toMatchObject({ code: 'Aborted' });
      expect(Date.now() - started, location).toBeLessThan(10_000);
    }
  }, 60_000);
});

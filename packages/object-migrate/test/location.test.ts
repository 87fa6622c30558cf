/**
 * Locations: each provider's published naming rules, table-driven (every name the provider
 * takes is taken, every refusal is InvalidArgument naming the rule), and the prefix, which is a
 * key prefix taken as written (`..`, `%2F`, NUL, line breaks are characters of the keys, never
 * decoded or resolved), run end to end on the emulators: a Cloud Storage bucket with an
 * underscore, prefixes with path and percent tricks that must not reach the objects they look
 * like, and a store listing a key outside the prefix, which must not be rewritten.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Storage } from '@google-cloud/storage';
import { openEnvelope, sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireTarget } from '../../../conformance/harness/env.js';
import { parseObjectLocation } from '../src/location.js';
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

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** The error a parse throws, as { code, message }, or undefined when the location is taken. */
function refusal(uri: string): { code: string; message: string } | undefined {
  try {
    parseObjectLocation(uri);
    return undefined;
  } catch (e) {
    return { code: (e as { code: string }).code, message: (e as Error).message };
  }
}

const d63 = 'a'.repeat(63);

describe('S3 general purpose bucket naming rules', () => {
  it.each([
    'abc',
    'a'.repeat(63),
    'my-bucket',
    'my.bucket.example.com',
    '1bucket9',
    '123',
    'a-b.c-d',
    'docexamplewebsite.com',
    '999.1.1.1', // not an IP address
    '1.2.3', // three parts
    'bucket-xn--x', // reserved prefixes only at the start
    'my-sthree-bucket',
    'name-s3alias-x',
    'my-ap-abcdefghijklmnopqrstuvwxyz012-s3alias', // an access point alias: S3 takes it as a bucket
    'amzn-s3-demo', // the prefix is amzn-s3-demo-
    'prefix-111122223333-us-west-2-an', // account regional namespace
  ])('takes %s', (name) => {
    expect(refusal(`s3://${name}/p/`)).toBeUndefined();
    expect(parseObjectLocation(`s3://${name}/p/`).store.location).toBe(`s3://${name}`);
  });

  it.each([
    ['ab', /3 to 63 characters long \(it has 2\)/],
    ['a'.repeat(64), /3 to 63 characters long \(it has 64\)/],
    ['', /3 to 63 characters long \(it has 0\)/],
    ['my_bucket', /only lowercase letters, digits, dots and hyphens \(it holds "_"\)/],
    ['MyBucket', /only lowercase letters, digits, dots and hyphens \(it holds "M"\)/],
    ['bücket', /it holds "ü"/],
    ['-bucket', /begin and end with a letter or digit/],
    ['bucket-', /begin and end with a letter or digit/],
    ['.bucket', /begin and end with a letter or digit/],
    ['bucket.', /begin and end with a letter or digit/],
    ['my..bucket', /two adjacent dots/],
    ['192.168.5.4', /formatted as an IP address/],
    ['10.0.0.255', /formatted as an IP address/],
    ['xn--bucket', /begin with "xn--"/],
    ['sthree-bucket', /begin with "sthree-"/],
    ['sthree-configurator', /begin with "sthree-"/],
    ['amzn-s3-demo-bucket', /begin with "amzn-s3-demo-"/],
    ['bucket--ol-s3', /end with "--ol-s3".*Object Lambda/],
    ['bucket.mrap', /end with ".mrap".*Multi-Region Access Point/],
    ['bucket--usw2-az1--x-s3', /end with "--x-s3".*directory bucket/],
    ['bucket--table-s3', /end with "--table-s3".*table bucket/],
  ])('refuses %j: %s', (name, rule) => {
    const r = refusal(`s3://${name}/p/`);
    expect(r?.code).toBe('InvalidArgument');
    expect(r?.message).toMatch(/^bad S3 bucket name /);
    expect(r?.message).toMatch(rule);
  });
});

describe('Cloud Storage bucket naming requirements', () => {
  it.each([
    'my_bucket',
    'a_b',
    'x_y_z',
    'my-bucket_2',
    'abc',
    d63,
    'example.com',
    `${d63}.${d63}.${d63}.abcdefghijklmnopqrstuvwxyz0123`, // 222 characters, dotted
    'a.b.c',
    'my_bucket.example.com',
    '999.1.1.1',
    'go-og',
    'my-goog-bucket', // only the prefix is reserved
    'gooogle', // neither "google" nor "g00gle"
  ])('takes %s', (name) => {
    expect(refusal(`gs://${name}/p/`)).toBeUndefined();
    expect(parseObjectLocation(`gs://${name}/p/`).store.location).toBe(`gs://${name}`);
  });

  it('the dotted 222-character name above is 222 characters', () => {
    expect(`${d63}.${d63}.${d63}.abcdefghijklmnopqrstuvwxyz0123`).toHaveLength(222);
  });

  it.each([
    ['ab', /3 to 63 characters long, or up to 222 with dots \(it has 2\)/],
    ['a'.repeat(64), /3 to 63 characters long, or up to 222 with dots \(it has 64\)/],
    [`${d63}.${d63}.${d63}.${'b'.repeat(31)}`, /3 to 222 characters long with dots \(it has 223\)/],
    [`${'a'.repeat(64)}.com`, /dot-separated component longer than 63/],
    ['My_Bucket', /only lowercase letters, digits, dashes, underscores and dots \(it holds "M"\)/],
    ['my bucket', /it holds " "/],
    ['my+bucket', /it holds "\+"/],
    ['_bucket', /begin and end with a letter or digit/],
    ['bucket_', /begin and end with a letter or digit/],
    ['-bucket', /begin and end with a letter or digit/],
    ['bucket.', /begin and end with a letter or digit/],
    ['a..b', /two adjacent dots/],
    ['192.168.5.4', /IP address in dotted-decimal notation/],
    ['goog-bucket', /begin with "goog"/],
    ['googbucket', /begin with "goog"/],
    ['my-google-bucket', /contain "google" or a close misspelling/],
    ['g00gle-things', /contain "google" or a close misspelling/],
  ])('refuses %j: %s', (name, rule) => {
    const r = refusal(`gs://${name}/p/`);
    expect(r?.code).toBe('InvalidArgument');
    expect(r?.message).toMatch(/^bad Cloud Storage bucket name /);
    expect(r?.message).toMatch(rule);
  });
});

describe('Azure storage account and container naming rules', () => {
  it.each([
    'azblob://abc/abc',
    'azblob://devstoreaccount1/container/p/',
    `azblob://${'a'.repeat(24)}/${'c'.repeat(63)}`,
    'azblob://account/my-container-1',
    'azblob://account/1-2-3',
    'azblob://account/$root/p/',
    'azblob://account/$web/site/',
    'azblob://account/$logs/blob/',
  ])('takes %s', (uri) => {
    expect(refusal(uri)).toBeUndefined();
  });

  it.each([
    ['azblob://ab/container', /Azure storage account name "ab".*3 to 24 lowercase letters and digits/],
    [`azblob://${'a'.repeat(25)}/container`, /Azure storage account name.*3 to 24/],
    ['azblob://Account/container', /Azure storage account name.*3 to 24/],
    ['azblob://my-account/container', /Azure storage account name.*3 to 24/],
    ['azblob://account/ab', /Azure container name "ab".*3 to 63 characters long \(it has 2\)/],
    [`azblob://account/${'c'.repeat(64)}`, /Azure container name.*3 to 63 characters long \(it has 64\)/],
    ['azblob://account/My-Container', /Azure container name.*it holds "M"/],
    ['azblob://account/my_container', /Azure container name.*it holds "_"/],
    ['azblob://account/my.container', /Azure container name.*it holds "\."/],
    ['azblob://account/-container', /Azure container name.*begin and end with a letter or digit/],
    ['azblob://account/container-', /Azure container name.*begin and end with a letter or digit/],
    ['azblob://account/my--container', /Azure container name.*consecutive hyphens/],
    ['azblob://account/$other', /Azure container name.*it holds "\$"/],
    ['azblob://account', /needs azblob:\/\/account\/container/],
    ['azblob://account/', /needs azblob:\/\/account\/container/],
    ['azblob:///container/p', /needs azblob:\/\/account\/container/],
  ])('refuses %s', (uri, rule) => {
    const r = refusal(uri);
    expect(r?.code).toBe('InvalidArgument');
    expect(r?.message).toMatch(rule);
  });
});

describe('prefixes are key prefixes, taken as written', () => {
  it.each([
    ['s3://bucket/a/../b/', 'a/../b/'],
    ['s3://bucket/a%2F..%2Fb', 'a%2F..%2Fb'],
    ['s3://bucket/%2e%2e/x', '%2e%2e/x'],
    ['s3://bucket/nul\0/x', 'nul\0/x'],
    ['s3://bucket/line\nbreak/', 'line\nbreak/'],
    ['s3://bucket/sep\u2028/', 'sep\u2028/'],
    ['s3://bucket/?q=1#frag', '?q=1#frag'],
    ['s3://bucket//double//', '/double//'],
    ['s3://bucket/😀/', '😀/'],
    [`s3://bucket/${'k'.repeat(1024)}`, 'k'.repeat(1024)],
    ['gs://bucket/a/../b/', 'a/../b/'],
    ['gs://bucket/nul\0/x\t', 'nul\0/x\t'],
    ['azblob://account/container/a%2F..%2Fb', 'a%2F..%2Fb'],
    ['azblob://account/container/a/..', 'a/..'], // still matches a/..x
    ['azblob://account/container/a/...b/', 'a/...b/'],
    ['azblob://account/container/line\nbreak/', 'line\nbreak/'],
    [`azblob://account/container/${'é'.repeat(1024)}`, 'é'.repeat(1024)], // 1,024 characters
  ])('%j has the prefix %j', (uri, prefix) => {
    expect(parseObjectLocation(uri).prefix).toBe(prefix);
  });

  it.each([
    ['s3://bucket/a\uD800b', /s3 prefix .*well-formed Unicode/],
    ['gs://bucket/\uDC00', /gs prefix .*well-formed Unicode/],
    ['azblob://account/container/x\uD83D', /azblob prefix .*well-formed Unicode/],
    [`s3://bucket/${'k'.repeat(1025)}`, /longer than the longest object key, 1024 bytes \(it has 1025\)/],
    [`s3://bucket/${'é'.repeat(513)}`, /1024 bytes \(it has 1026\)/],
    [`gs://bucket/${'é'.repeat(513)}`, /1024 bytes \(it has 1026\)/],
    [`azblob://account/container/${'é'.repeat(1025)}`, /1024 characters \(it has 1025\)/],
    ['gs://bucket/line\nbreak/', /carriage return or line feed/],
    ['gs://bucket/cr\r', /carriage return or line feed/],
    ['azblob://account/container/a/../b/', /"\." or "\.\." segment/],
    ['azblob://account/container/../', /"\." or "\.\." segment/],
    ['azblob://account/container/./x', /"\." or "\.\." segment/],
    ['azblob://account/container/a\\b', /backslash/],
  ])('refuses %j', (uri, rule) => {
    const r = refusal(uri);
    expect(r?.code).toBe('InvalidArgument');
    expect(r?.message).toMatch(rule);
  });
});

describe('a Cloud Storage bucket named with underscores, on fake-gcs-server', () => {
  it('is listed and migrated end to end', async () => {
    const name = `kp_${randomBytes(4).toString('hex')}_objects`;
    const endpoints = endpointsFor('fake-gcs-server');
    await new Storage({
      apiEndpoint: requireTarget('fake-gcs-server').KEYPORT_FAKEGCS_ENDPOINT,
      projectId: 'keyport-test',
    }).createBucket(name);
    const uri = `gs://${name}/p/`;
    const { store } = parseObjectLocation(uri, endpoints);
    const want = new Map<string, string>();
    for (let i = 0; i < 3; i++) {
      const pt = randomBytes(100 + i);
      await store.put(`p/${i}`, await sealEnvelope(pt, { recipients: [k.from], keys: k.keys }));
      want.set(`p/${i}`, sha(pt));
    }
    const report = await runShard({ location: uri, endpoints, from: k.from, to: k.to, keys: k.keys });
    expect(report.failures).toEqual([]);
    expect(report.counts).toMatchObject({ listed: 3, migrated: 3, failed: 0 });
    for (const [key, digest] of want) {
      const opened = await openEnvelope(await readAll((await store.get(key)).body), {
        trust: [k.to],
        keys: k.keys,
      });
      expect(sha(opened.plaintext), key).toBe(digest);
    }
  }, 60_000);
});

async function keysUnder(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of store.list(prefix)) out.push(e.key);
  return out.sort();
}

describe.each(EMULATORS)('prefixes that look like other places, on %s', (emulator) => {
  /** Seals each key for the source; returns their plaintext digests. */
  async function seed(store: ObjectStore, keys: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const key of keys) {
      const pt = Buffer.from(`plaintext of ${key}`);
      await store.put(key, await sealEnvelope(pt, { recipients: [k.from], keys: k.keys }));
      out.set(key, sha(pt));
    }
    return out;
  }
  const headerOf = async (store: ObjectStore, key: string) =>
    countHeaders(
      {
        ...store,
        // Only the one key: countHeaders lists a prefix.
        async *list(prefix, signal) {
          for await (const e of store.list(prefix, signal)) if (e.key === key) yield e;
        },
      },
      key,
      k.from,
      k.to,
    );

  it('a prefix holding "..", "%2F" or NUL lists the keys that hold them, never the place they spell', async () => {
    const bucket = await freshBucket(emulator);
    const endpoints = endpointsFor(emulator);
    const { store } = parseObjectLocation(bucket, endpoints);
    // Azure refuses dot segments in a prefix (and in blob names) and cannot list a NUL.
    const cases: [prefix: string, inside: string, lookalike: string][] = [
      ['a%2Fb/', 'a%2Fb/x', 'a/b/x'],
      ['c%2F..%2Fd/', 'c%2F..%2Fd/x', 'd/x'],
      ['%2e%2e/', '%2e%2e/x', 'x'],
      ...(emulator === 'azurite'
        ? []
        : ([
            ['p/../q/', 'p/../q/x', 'q/x'],
            ['nul\0/', 'nul\0/x', 'nul/x'],
          ] as [string, string, string][])),
    ];
    for (const [prefix, inside, lookalike] of cases) {
      const want = await seed(store, [inside, lookalike]);
      const report = await runShard({
        location: `${bucket}/${prefix}`,
        endpoints,
        from: k.from,
        to: k.to,
        keys: k.keys,
      });
      expect(report.failures, prefix).toEqual([]);
      expect(report.counts, prefix).toMatchObject({ listed: 1, migrated: 1, failed: 0 });
      expect(await headerOf(store, inside), inside).toMatchObject({ target: 1, source: 0 });
      expect(await headerOf(store, lookalike), lookalike).toMatchObject({ target: 0, source: 1 });
      const opened = await openEnvelope(await readAll((await store.get(inside)).body), {
        trust: [k.to],
        keys: k.keys,
      });
      expect(sha(opened.plaintext)).toBe(want.get(inside));
    }
  }, 120_000);

  it('a key the store lists outside the prefix is not rewritten, nor counted', async () => {
    const bucket = await freshBucket(emulator);
    const endpoints = endpointsFor(emulator);
    const real = parseObjectLocation(`${bucket}/in/`, endpoints);
    await seed(real.store, ['in/a', 'in/b', 'out/c', 'inside']);
    // A store (an S3-compatible one that normalises or ignores the prefix) listing more than asked.
    const careless: ObjectStore = {
      ...real.store,
      async *list(_prefix, signal) {
        yield* real.store.list('', signal);
      },
    };
    const report = await runShard({
      location: { store: careless, prefix: 'in/' },
      from: k.from,
      to: k.to,
      keys: k.keys,
    });
    expect(report.failures).toEqual([]);
    expect(report.counts).toMatchObject({ listed: 2, migrated: 2, failed: 0 });
    expect(await headerOf(real.store, 'out/c')).toMatchObject({ source: 1, target: 0 });
    expect(await headerOf(real.store, 'inside')).toMatchObject({ source: 1, target: 0 });
    expect(await countHeaders(careless, 'in/', k.from, k.to)).toEqual({
      target: 2,
      source: 0,
      both: 0,
      other: 0,
      vanished: 0,
      vanishedSeen: [],
    });
    expect((await keysUnder(real.store, '')).filter((key) => !key.includes('.keyport-migrate/'))).toEqual([
      'in/a',
      'in/b',
      'inside',
      'out/c',
    ]);
  }, 60_000);
});

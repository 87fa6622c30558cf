/**
 * Every options object of the package refuses what it does not know and what is of the wrong
 * type: InvalidArgument naming the option, never its value (a connection string holds an account
 * key), before any store or KMS call (fakes record them) and before any file is written. A store's
 * `put` refuses a misspelt condition instead of writing unconditionally over another writer.
 */
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyportError } from '@keyport/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  azureBlobStore,
  countHeaders,
  fileJournal,
  gcsStore,
  migrateObject,
  migrateObjectsCommand,
  migrateObjectsStatusCommand,
  migrationStatus,
  type ObjectStore,
  objectJournal,
  parseObjectLocation,
  runShard,
  s3Store,
  TokenBucket,
} from '../src/index.js';
import { type TestKeys, testKeys } from './helpers/keys.js';
import { EMULATORS, endpointsFor, freshBucket, readAll } from './helpers/stores.js';

async function refusal(run: () => unknown): Promise<KeyportError> {
  let error: unknown;
  try {
    await run();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(KeyportError);
  expect((error as KeyportError).code).toBe('InvalidArgument');
  return error as KeyportError;
}

/** A store that records every call and answers none. */
function fakeStore(calls: string[]): ObjectStore {
  const record = (name: string) => () => {
    calls.push(name);
    throw new Error(`${name} must not be reached`);
  };
  return {
    provider: 's3',
    location: 's3://fake',
    list: record('list') as never,
    get: record('get') as never,
    put: record('put') as never,
    delete: record('delete') as never,
  };
}

const SECRET = 'AccountKey=c2VjcmV0LWFjY291bnQta2V5';
const FROM = 'local:///tmp/unknown-options.kp#a';
const TO = 'local:///tmp/unknown-options.kp#b';

describe('store factories', () => {
  const cases: [string, () => unknown, string][] = [
    [
      's3Store: a misspelt endpoint',
      () => s3Store({ bucket: 'b', endpont: 'http://127.0.0.1:1' } as never),
      '"endpont"',
    ],
    [
      's3Store: pageSize a string',
      () => s3Store({ bucket: 'b', pageSize: '10' } as never),
      'options.pageSize',
    ],
    ['s3Store: pageSize above 1000', () => s3Store({ bucket: 'b', pageSize: 5000 }), 'options.pageSize'],
    ['s3Store: bucket a number', () => s3Store({ bucket: 5 } as never), 'options.bucket'],
    ['s3Store: region a number', () => s3Store({ bucket: 'b', region: 5 } as never), 'options.region'],
    [
      'azureBlobStore: a misspelt connectionString',
      () => azureBlobStore({ account: 'a', container: 'c', conectionString: SECRET } as never),
      '"conectionString"',
    ],
    [
      'azureBlobStore: connectionString a number',
      () => azureBlobStore({ account: 'a', container: 'c', connectionString: 5 } as never),
      'options.connectionString',
    ],
    [
      'azureBlobStore: pageSize NaN',
      () => azureBlobStore({ account: 'a', container: 'c', pageSize: Number.NaN }),
      'options.pageSize',
    ],
    [
      'gcsStore: a misspelt apiEndpoint',
      () => gcsStore({ bucket: 'b', apiEndPoint: 'http://x' } as never),
      '"apiEndPoint"',
    ],
    [
      'gcsStore: pageSize a string',
      () => gcsStore({ bucket: 'b', pageSize: '10' } as never),
      'options.pageSize',
    ],
    [
      'gcsStore: projectId a number',
      () => gcsStore({ bucket: 'b', projectId: 5 } as never),
      'options.projectId',
    ],
    [
      'parseObjectLocation: a misspelt endpoint',
      () => parseObjectLocation('s3://bucket/p', { s3Endpont: 'http://x' } as never),
      'endpoints: unknown option "s3Endpont"',
    ],
    [
      'parseObjectLocation: a misspelt connection string is not echoed',
      () => parseObjectLocation('azblob://acct/cont/p', { azureConectionString: SECRET } as never),
      '"azureConectionString"',
    ],
    [
      'parseObjectLocation: s3Region a number',
      () => parseObjectLocation('s3://bucket/p', { s3Region: 5 } as never),
      'endpoints.s3Region',
    ],
    [
      'parseObjectLocation: partSize a string',
      () => parseObjectLocation('s3://bucket/p', { partSize: '8388608' } as never),
      'endpoints.partSize',
    ],
    [
      'parseObjectLocation: endpoints a string',
      () => parseObjectLocation('s3://bucket/p', 'http://x' as never),
      'endpoints',
    ],
  ];
  for (const [name, run, named] of cases) {
    it(`${name} is refused naming ${named}`, async () => {
      const e = await refusal(run);
      expect(e.message).toContain(named);
      expect(e.message).not.toContain('c2VjcmV0');
    });
  }
  it('known options still make stores', () => {
    expect(
      s3Store({ bucket: 'b', region: 'us-east-1', endpoint: 'http://x', partSize: 5 * 2 ** 20, pageSize: 10 })
        .location,
    ).toBe('s3://b');
    expect(
      azureBlobStore({ account: 'a', container: 'c', connectionString: SECRET, pageSize: 5000 }).location,
    ).toBe('azblob://a/c');
    expect(gcsStore({ bucket: 'b', projectId: 'p', apiEndpoint: 'http://x', pageSize: 1000 }).location).toBe(
      'gs://b',
    );
  });
});

describe('migrateObject', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['a misspelt keepSource', { keepsource: true }, '"keepsource"'],
    ['verify a string', { verify: 'yes' }, 'options.verify'],
    ['keepSource a string', { keepSource: 'yes' }, 'options.keepSource'],
    ['timeoutMs NaN', { timeoutMs: Number.NaN }, 'options.timeoutMs'],
    ['signal a string', { signal: 'x' }, 'options.signal'],
    ['onConflict not a function', { onConflict: 'log' }, 'options.onConflict'],
  ];
  for (const [name, extra, named] of cases) {
    it(`${name} is refused naming ${named}, before the object is read`, async () => {
      const calls: string[] = [];
      const e = await refusal(() =>
        migrateObject(fakeStore(calls), 'k', { from: FROM, to: TO, ...extra } as never),
      );
      expect(e.message).toContain(named);
      expect(calls).toEqual([]);
    });
  }
  it('a key that is not a string is refused before the object is read', async () => {
    const calls: string[] = [];
    const e = await refusal(() => migrateObject(fakeStore(calls), 5 as never, { from: FROM, to: TO }));
    expect(e.message).toContain('key');
    expect(calls).toEqual([]);
  });
});

describe('journals, status, rate limit', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyport-om-options-'));
  });

  it('fileJournal / objectJournal: a misspelt shard field or a wrong type is refused', async () => {
    const calls: string[] = [];
    expect((await refusal(() => fileJournal(dir, { idx: 0, count: 1 } as never))).message).toContain('"idx"');
    expect((await refusal(() => fileJournal(5 as never, { index: 0, count: 1 }))).message).toContain('dir');
    expect((await refusal(() => fileJournal(dir, { index: '0', count: 1 } as never))).message).toContain(
      'shard.index',
    );
    expect(
      (await refusal(() => objectJournal(fakeStore(calls), 'j/', { idx: 0, count: 1 } as never))).message,
    ).toContain('"idx"');
    expect(
      (await refusal(() => objectJournal(fakeStore(calls), 5 as never, { index: 0, count: 1 }))).message,
    ).toContain('prefix');
    expect(calls).toEqual([]);
  });

  it('migrationStatus / countHeaders: a misspelt option is refused before the store is listed', async () => {
    const calls: string[] = [];
    const store = fakeStore(calls);
    const e1 = await refusal(() => migrationStatus({ store, prefix: '' }, { jurnalDir: dir } as never));
    expect(e1.message).toContain('"jurnalDir"');
    const e2 = await refusal(() => countHeaders(store, '', FROM, TO, { exclud: 'x/' } as never));
    expect(e2.message).toContain('"exclud"');
    await refusal(() => countHeaders(store, '', FROM, TO, { signal: 'x' } as never));
    expect(calls).toEqual([]);
  });

  it('TokenBucket: a rate given as a string (which disabled the limit) is refused', async () => {
    expect((await refusal(() => new TokenBucket('5' as never))).message).toContain('maxRps');
    await refusal(() => new TokenBucket(5).take('x' as never));
    await new TokenBucket(5).take(AbortSignal.timeout(1000));
  });
});

describe('commands and runShard (on the emulators)', () => {
  let k: TestKeys;
  let dir: string;
  beforeAll(async () => {
    k = await testKeys();
    dir = await mkdtemp(join(tmpdir(), 'keyport-om-options-'));
  });
  afterAll(async () => {
    await k?.close();
  });

  it('migrateObjectsCommand: unknown options and wrong types are refused before any journal or call', async () => {
    const uri = `${await freshBucket('moto')}/p/`;
    const s3Endpoint = endpointsFor('moto').s3Endpoint as string;
    const journalDir = join(dir, 'command');
    const base = { from: k.from, to: k.to, s3Endpoint, journalDir };
    for (const [extra, named] of [
      [{ keepsource: true }, '"keepsource"'],
      [{ keepSource: 'yes' }, 'options.keepSource'],
      [{ jobs: 2 }, 'options.jobs'],
      [{ maxRPS: '5' }, '"maxRPS"'],
    ] as const) {
      const e = await refusal(() =>
        migrateObjectsCommand(uri, { ...base, ...extra } as never, { keys: k.keys }),
      );
      expect(e.message).toContain(named);
    }
    const e = await refusal(() =>
      migrateObjectsCommand(uri, base, { keys: k.keys, signl: AbortSignal.timeout(1000) } as never),
    );
    expect(e.message).toContain('"signl"');
    expect(existsSync(journalDir)).toBe(false);
    // Known options still run.
    expect(
      (await migrateObjectsCommand(uri, { ...base, jobs: '2', keepSource: true }, { keys: k.keys })).exitCode,
    ).toBe(0);
  });

  it('migrateObjectsStatusCommand: a misspelt option is refused', async () => {
    const uri = `${await freshBucket('moto')}/p/`;
    const s3Endpoint = endpointsFor('moto').s3Endpoint as string;
    expect(
      (await refusal(() => migrateObjectsStatusCommand(uri, { s3Endpoint, jurnalDir: dir } as never)))
        .message,
    ).toContain('"jurnalDir"');
    expect(
      (
        await refusal(() =>
          migrateObjectsStatusCommand(uri, { s3Endpoint, headers: { form: k.from, to: k.to } } as never),
        )
      ).message,
    ).toContain('"form"');
  });

  it('runShard: a misspelt endpoint is refused, naming options.endpoints, before any journal', async () => {
    const uri = `${await freshBucket('moto')}/p/`;
    const journalDir = join(dir, 'run-shard');
    const e = await refusal(() =>
      runShard({
        location: uri,
        endpoints: { s3Endpont: endpointsFor('moto').s3Endpoint } as never,
        from: k.from,
        to: k.to,
        keys: k.keys,
        journalDir,
      }),
    );
    expect(e.message).toContain('options.endpoints: unknown option "s3Endpont"');
    expect(existsSync(journalDir)).toBe(false);
  });

  for (const emulator of EMULATORS) {
    it(`${emulator}: put with a misspelt condition is refused, never an unconditional overwrite`, async () => {
      const loc = parseObjectLocation(`${await freshBucket(emulator)}/`, endpointsFor(emulator));
      await loc.store.put('o', Buffer.from('theirs'));
      for (const [options, named] of [
        [{ conditon: { ifAbsent: true } }, '"conditon"'],
        [{ condition: { ifVersoin: 'stale' } }, '"ifVersoin"'],
        [{ condition: { ifAbsent: 'yes' } }, 'options.condition.ifAbsent'],
        [{ condition: {} }, 'options.condition'],
        [{ signal: 'x' }, 'options.signal'],
        [{ attributes: { contentType: 'text/plain' } }, 'options.attributes.metadata'],
      ] as const) {
        const e = await refusal(() => loc.store.put('o', Buffer.from('mine'), options as never));
        expect(e.message).toContain(named);
      }
      const now = await loc.store.get('o');
      expect((await readAll(now.body)).toString()).toBe('theirs');
      // The condition spelt right still holds.
      await expect(
        loc.store.put('o', Buffer.from('mine'), { condition: { ifAbsent: true } }),
      ).rejects.toMatchObject({
        code: 'AlreadyExists',
      });
    });
  }
});

/**
 * `status --headers` with a journal prefix inside the location, journals
 * read only right under their prefix, `maxRps` and `calls` counting the requests each store really
 * sends (checked against a counting proxy in front of each emulator), and a change of an object's
 * tags alone, which the conditional write does not see (a documented limitation, pinned here).
 */
import { createServer, request, type Server } from 'node:http';
import { CopyObjectCommand, PutObjectTaggingCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateObjectsCommand, migrateObjectsStatusCommand } from '../src/command.js';
import { journalName, readObjectJournals } from '../src/journal.js';
import { parseObjectLocation, type StoreEndpoints } from '../src/location.js';
import { migrateObject } from '../src/migrate-object.js';
import { migrationStatus } from '../src/status.js';
import { runShard } from '../src/worker.js';
import { type TestKeys, testKeys } from './helpers/keys.js';
import { EMULATORS, type EmulatorName, endpointsFor, freshBucket } from './helpers/stores.js';

let k: TestKeys;
beforeAll(async () => {
  k = await testKeys();
});
afterAll(async () => {
  await k?.close();
});

const seal = (text: string | Buffer) =>
  sealEnvelope(typeof text === 'string' ? Buffer.from(text) : text, { recipients: [k.from], keys: k.keys });

/** An HTTP proxy in front of `target` (an origin) that counts the requests it forwards, with their times. */
async function countingProxy(
  target: string,
): Promise<{ origin: string; times: number[]; close(): Promise<void> }> {
  const to = new URL(target);
  const times: number[] = [];
  let origin = '';
  const server: Server = createServer((req, res) => {
    times.push(performance.now());
    const out = request(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        const headers = { ...answer.headers };
        // A resumable upload's session URL: its chunks must come through here too.
        if (typeof headers.location === 'string' && /^https?:\/\//.test(headers.location)) {
          const l = new URL(headers.location);
          headers.location = `${origin}${l.pathname}${l.search}`;
        }
        res.writeHead(answer.statusCode ?? 502, headers);
        answer.pipe(res);
      },
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    origin,
    times,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** The emulator's endpoints with its origin swapped for the proxy's; and the origin swapped out. */
function throughProxy(
  e: StoreEndpoints,
  name: EmulatorName,
): { target: string; via: (o: string) => StoreEndpoints } {
  if (name === 'moto') {
    const u = new URL(e.s3Endpoint as string);
    return { target: u.origin, via: (o) => ({ ...e, s3Endpoint: `${o}${u.pathname}` }) };
  }
  if (name === 'azurite') {
    const cs = e.azureConnectionString as string;
    const m = /BlobEndpoint=(https?:\/\/[^/;]+)/.exec(cs);
    if (m === null) throw new Error('no BlobEndpoint in the Azurite connection string');
    return {
      target: m[1] as string,
      via: (o) => ({ ...e, azureConnectionString: cs.replace(m[1] as string, o) }),
    };
  }
  const u = new URL(e.gcsEndpoint as string);
  return {
    target: u.origin,
    via: (o) => ({ ...e, gcsEndpoint: `${o}${u.pathname === '/' ? '' : u.pathname}` }),
  };
}

describe('status --headers with a journal prefix inside the location', () => {
  it('does not count the journal objects as "other"', async () => {
    const uri = `${await freshBucket('moto')}/p/`;
    const e = endpointsFor('moto');
    const { store } = parseObjectLocation(uri, e);
    for (let i = 0; i < 3; i++) await store.put(`p/o${i}`, await seal(`v${i}`));
    const o = { s3Endpoint: e.s3Endpoint as string, journalPrefix: 'p/journals/' };
    const run = await migrateObjectsCommand(uri, { ...o, from: k.from, to: k.to }, { keys: k.keys });
    expect(run.exitCode).toBe(0);
    const status = await migrateObjectsStatusCommand(uri, { ...o, headers: { from: k.from, to: k.to } });
    expect(status.result).toMatchObject({
      done: 3,
      headers: { target: 3, source: 0, both: 0, other: 0 },
    });
  }, 30_000);
});

describe('journals are read right under their prefix only', () => {
  it('leaves out a journal in a folder below the prefix and a key merely ending like one', async () => {
    const uri = `${await freshBucket('moto')}/d/`;
    const e = endpointsFor('moto');
    const loc = parseObjectLocation(uri, e);
    await loc.store.put('d/o', await seal('v'));
    const report = await runShard({ location: uri, endpoints: e, from: k.from, to: k.to, keys: k.keys });
    expect(report.counts).toMatchObject({ migrated: 1 });
    const prefix = 'd/.keyport-migrate/';
    // Another run's journals, kept below (an older layout, a copy): three shards, newer.
    const other = JSON.stringify({
      ...report,
      shard: { index: 0, count: 3 },
      updatedAt: new Date(Date.now() + 60_000).toISOString(),
    });
    await loc.store.put(`${prefix}old/${journalName({ index: 0, count: 3 })}`, Buffer.from(other));
    await loc.store.put(`${prefix}my${journalName({ index: 1, count: 3 })}`, Buffer.from(other));
    const journals = await readObjectJournals(loc.store, prefix);
    expect(journals.map((j) => j.shard)).toEqual([{ index: 0, count: 1 }]);
    const status = await migrationStatus(loc);
    expect(status.shards).toMatchObject({ expected: 1, reporting: 1, finished: 1, missing: [] });
  }, 30_000);
});

describe('maxRps and calls count the requests each store sends', () => {
  for (const name of EMULATORS) {
    it(`${name}: the report's calls are the requests the service received (reads with their tags, every part, the journal)`, async () => {
      const uri = `${await freshBucket(name)}/c/`;
      const e = endpointsFor(name);
      // S3 parts are 5 MiB at the least; Azure blocks and Cloud Storage chunks 256 KiB here.
      const partSize = name === 'moto' ? 5 * 1024 * 1024 : 256 * 1024;
      const { store } = parseObjectLocation(uri, { ...e, partSize });
      for (let i = 0; i < 3; i++) await store.put(`c/o${i}`, await seal(`v${i}`));
      // Three parts (blocks, chunks) once rewrapped.
      await store.put('c/big', await seal(Buffer.alloc(partSize * 2 + 1000, 7)));
      const { target, via } = throughProxy(e, name);
      const proxy = await countingProxy(target);
      try {
        const report = await runShard({
          location: uri,
          endpoints: { ...via(proxy.origin), partSize },
          from: k.from,
          to: k.to,
          keys: k.keys,
          concurrency: 2,
          maxRps: 1000,
        });
        expect(report.counts).toMatchObject({ listed: 4, migrated: 4, failed: 0, conflicts: 0 });
        const provider = name === 'moto' ? 's3' : name === 'azurite' ? 'azblob' : 'gs';
        // The report is the state the last journal write carries: that write itself is the one
        // request more.
        expect(proxy.times.length).toBe((report.calls[provider]?.calls ?? 0) + 1);
      } finally {
        await proxy.close();
      }
    }, 60_000);
  }

  it('lets through no more requests than the rate allows (S3: a read is the object and its tags)', async () => {
    const uri = `${await freshBucket('moto')}/r/`;
    const e = endpointsFor('moto');
    const { store } = parseObjectLocation(uri, e);
    for (let i = 0; i < 10; i++) await store.put(`r/o${i}`, await seal(`v${i}`));
    const { target, via } = throughProxy(e, 'moto');
    const proxy = await countingProxy(target);
    try {
      const rate = 20;
      const t0 = performance.now();
      const report = await runShard({
        location: uri,
        endpoints: via(proxy.origin),
        from: k.from,
        to: k.to,
        keys: k.keys,
        maxRps: rate,
      });
      const seconds = (performance.now() - t0) / 1000;
      expect(report.counts).toMatchObject({ migrated: 10, failed: 0 });
      // A burst of one second's worth, then `rate` a second. Before, a read was one token for
      // two requests and the journal took none: 30-odd requests went by in a fraction of a second.
      expect(proxy.times.length).toBeGreaterThan(30);
      expect(proxy.times.length).toBeLessThanOrEqual(rate + rate * seconds);
    } finally {
      await proxy.close();
    }
  }, 30_000);
});

describe('a change of the tags alone (documented limitation)', () => {
  for (const name of ['moto', 'azurite'] as const) {
    it(`${name}: tags set between the read and the conditional write are replaced by those read`, async () => {
      // PutObjectTagging and Set Blob Tags leave the ETag as it is: the write conditioned on the
      // ETag goes through. README, "Tags changed alone".
      const uri = `${await freshBucket(name)}/t/`;
      const e = endpointsFor(name);
      const { store } = parseObjectLocation(uri, e);
      await store.put('t/x', await seal('x'), { attributes: { metadata: {}, tags: { state: 'old' } } });
      const bucket = uri.replace(/^[a-z0-9]+:\/\//, '').split('/');
      const out = await migrateObject(store, 't/x', {
        from: k.from,
        to: k.to,
        keys: k.keys,
        beforeWrite: async () => {
          if (name === 'moto') {
            const s3 = new S3Client({
              endpoint: e.s3Endpoint as string,
              region: 'us-east-1',
              forcePathStyle: true,
            });
            await s3.send(
              new PutObjectTaggingCommand({
                Bucket: bucket[0] as string,
                Key: 't/x',
                Tagging: { TagSet: [{ Key: 'state', Value: 'new' }] },
              }),
            );
            s3.destroy();
          } else {
            await BlobServiceClient.fromConnectionString(e.azureConnectionString as string)
              .getContainerClient(bucket[1] as string)
              .getBlobClient('t/x')
              .setTags({ state: 'new' });
          }
        },
      });
      expect(out).toMatchObject({ outcome: 'migrated', conflicts: 0 });
      const after = await store.get('t/x');
      after.cancel();
      expect({ ...after.tags }).toEqual({ state: 'old' });
    }, 30_000);
  }

  it('moto: metadata changed by a copy onto itself keeps the ETag, and is replaced by the metadata read', async () => {
    // README, "S3 metadata changed alone": a one-part object's copy keeps its ETag (the MD5 of
    // its bytes), so the write conditioned on it goes through.
    const uri = `${await freshBucket('moto')}/t/`;
    const e = endpointsFor('moto');
    const { store } = parseObjectLocation(uri, e);
    await store.put('t/x', await seal('x'), { attributes: { metadata: { state: 'old' }, tags: {} } });
    const bucket = uri.replace(/^s3:\/\//, '').split('/')[0] as string;
    const out = await migrateObject(store, 't/x', {
      from: k.from,
      to: k.to,
      keys: k.keys,
      beforeWrite: async () => {
        const s3 = new S3Client({
          endpoint: e.s3Endpoint as string,
          region: 'us-east-1',
          forcePathStyle: true,
        });
        await s3.send(
          new CopyObjectCommand({
            Bucket: bucket,
            Key: 't/x',
            CopySource: `${bucket}/t/x`,
            MetadataDirective: 'REPLACE',
            Metadata: { state: 'new' },
          }),
        );
        s3.destroy();
      },
    });
    expect(out).toMatchObject({ outcome: 'migrated', conflicts: 0 });
    const after = await store.get('t/x');
    after.cancel();
    expect({ ...after.metadata }).toEqual({ state: 'old' });
  }, 30_000);
});

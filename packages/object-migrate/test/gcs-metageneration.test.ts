/**
 * A Cloud Storage object whose metadata alone changes keeps its generation and gets a new
 * metageneration: a write conditioned on the generation alone replaced the new metadata with the
 * metadata read before it. fake-gcs-server neither counts metagenerations nor checks
 * `ifMetagenerationMatch`, so a proxy in front of it plays Cloud Storage's rule for the object
 * the test patches: its metadata answers carry the new metageneration, and an upload conditioned
 * on another one is refused 412, as Cloud Storage refuses it.
 */
import { createServer, request, type Server } from 'node:http';
import { Storage } from '@google-cloud/storage';
import { openEnvelope, sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseObjectLocation } from '../src/location.js';
import { migrateObject } from '../src/migrate-object.js';
import { ObjectChangedError } from '../src/store.js';
import { type TestKeys, testKeys } from './helpers/keys.js';
import { endpointsFor, freshBucket, readAll } from './helpers/stores.js';

let k: TestKeys;
let proxy: Server;
let origin = '';
/** Object name → the metageneration Cloud Storage would give it after the test's patches. */
const metagenerations = new Map<string, number>();
const uploads: URLSearchParams[] = [];

beforeAll(async () => {
  k = await testKeys();
  const to = new URL(endpointsFor('fake-gcs-server').gcsEndpoint as string);
  proxy = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const q = url.searchParams;
    const metadataOf = /^\/storage\/v1\/b\/[^/]+\/o\/([^/]+)$/.exec(url.pathname);
    const name = metadataOf !== null ? decodeURIComponent(metadataOf[1] as string) : q.get('name');
    const metageneration = name !== null ? metagenerations.get(name) : undefined;
    if (url.pathname.startsWith('/upload/') && req.method === 'POST') {
      uploads.push(q);
      const want = q.get('ifMetagenerationMatch');
      if (metageneration !== undefined && want !== null && want !== String(metageneration)) {
        req.resume();
        res.writeHead(412, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            error: { code: 412, message: 'Precondition Failed', errors: [{ reason: 'conditionNotMet' }] },
          }),
        );
        return;
      }
      // A new generation starts again at metageneration 1.
      if (name !== null) metagenerations.delete(name);
    }
    const out = request(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        const headers = { ...answer.headers };
        if (typeof headers.location === 'string' && /^https?:\/\//.test(headers.location)) {
          const l = new URL(headers.location);
          headers.location = `${origin}${l.pathname}${l.search}`;
        }
        if (metadataOf === null || q.get('alt') === 'media' || metageneration === undefined) {
          res.writeHead(answer.statusCode ?? 502, headers);
          answer.pipe(res);
          return;
        }
        const parts: Buffer[] = [];
        answer.on('data', (c: Buffer) => parts.push(c));
        answer.on('end', () => {
          const md = JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown>;
          md.metageneration = String(metageneration);
          const body = Buffer.from(JSON.stringify(md));
          delete headers['transfer-encoding'];
          headers['content-length'] = String(body.length);
          res.writeHead(answer.statusCode ?? 502, headers);
          res.end(body);
        });
      },
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
});
afterAll(async () => {
  await k?.close();
  proxy?.closeAllConnections();
  await new Promise((resolve) => proxy?.close(resolve));
});

describe('metadata changed alone between the read and the write, on Cloud Storage', () => {
  it('is a conflict: the new metadata is kept, and the object then migrated with it', async () => {
    const uri = await freshBucket('fake-gcs-server');
    const bucket = uri.slice('gs://'.length);
    const { store } = parseObjectLocation(uri, { ...endpointsFor('fake-gcs-server'), gcsEndpoint: origin });
    const direct = new Storage({
      apiEndpoint: endpointsFor('fake-gcs-server').gcsEndpoint as string,
      projectId: 'keyport-test',
    }).bucket(bucket);
    const patch = async (key: string, owner: string, metageneration: number) => {
      await direct.file(key).setMetadata({ metadata: { owner } });
      metagenerations.set(key, metageneration);
    };

    // The store's own write, single request and resumable, conditioned on a version read before
    // the patch.
    for (const [key, body] of [
      ['small', Buffer.from('x')],
      [
        'streamed',
        (async function* () {
          yield Buffer.from('x');
        })(),
      ],
    ] as const) {
      await store.put(key, Buffer.from('theirs'), { attributes: { metadata: { owner: 'old' }, tags: {} } });
      const read = await store.get(key);
      read.cancel();
      await patch(key, 'new', 2);
      await expect(store.put(key, body, { condition: { ifVersion: read.version } })).rejects.toBeInstanceOf(
        ObjectChangedError,
      );
      const now = await store.get(key);
      expect((await readAll(now.body)).toString()).toBe('theirs');
      expect({ ...now.metadata }).toEqual({ owner: 'new' });
      expect(now.version).not.toBe(read.version);
    }

    // The migration: the patch lands after the object was read, before it is written back.
    const pt = Buffer.from('plaintext of m');
    await store.put('m', await sealEnvelope(pt, { recipients: [k.from], keys: k.keys }), {
      attributes: { metadata: { owner: 'old' }, tags: {} },
    });
    let patched = false;
    const out = await migrateObject(store, 'm', {
      from: k.from,
      to: k.to,
      keys: k.keys,
      verify: true,
      beforeWrite: async (key) => {
        if (patched) return;
        patched = true;
        await patch(key, 'new', 2);
      },
    });
    expect(out).toMatchObject({ outcome: 'migrated', conflicts: 1, verified: true });
    const now = await store.get('m');
    expect({ ...now.metadata }).toEqual({ owner: 'new' });
    const opened = await openEnvelope(await readAll(now.body), { trust: [k.to], keys: k.keys });
    expect(Buffer.from(opened.plaintext)).toEqual(pt);
    // Every upload conditioned on a version named its metageneration too.
    const conditioned = uploads.filter((q) => (q.get('ifGenerationMatch') ?? '0') !== '0');
    expect(conditioned.length).toBeGreaterThanOrEqual(4);
    for (const q of conditioned) expect(q.get('ifMetagenerationMatch')).toMatch(/^[1-9][0-9]*$/);
  }, 60_000);
});

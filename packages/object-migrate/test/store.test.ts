/** The three stores against their emulators: listing, streaming reads, conditional writes, attributes. */
import { createHash, randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseObjectLocation } from '../src/location.js';
import { ObjectChangedError, type ObjectStore } from '../src/store.js';
import { EMULATORS, endpointsFor, freshBucket, readAll } from './helpers/stores.js';

const attributes = {
  contentType: 'application/x-keyport-envelope',
  cacheControl: 'max-age=60',
  contentDisposition: 'attachment; filename="a.bin"',
  metadata: { owner: 'team-a', case_kept: 'Value With Spaces' },
  tags: { env: 'test', tier: 'gold' },
};

describe.each(EMULATORS)('%s store', (emulator) => {
  let store: ObjectStore;
  beforeAll(async () => {
    const uri = await freshBucket(emulator);
    store = parseObjectLocation(uri, { ...endpointsFor(emulator), partSize: 5 * 1024 * 1024 }).store;
  });

  it('lists by prefix across pages and reads back what was written, attributes kept', async () => {
    for (let i = 0; i < 7; i++) await store.put(`list/${i}`, Buffer.from(`v${i}`), { attributes });
    await store.put('other/x', Buffer.from('x'));
    const listed = [];
    for await (const e of store.list('list/')) listed.push(e);
    expect(listed.map((e) => e.key).sort()).toEqual([
      'list/0',
      'list/1',
      'list/2',
      'list/3',
      'list/4',
      'list/5',
      'list/6',
    ]);
    const got = await store.get('list/3');
    expect((await readAll(got.body)).toString()).toBe('v3');
    expect(got.version).toBe(listed.find((e) => e.key === 'list/3')?.version);
    expect(got.contentType).toBe(attributes.contentType);
    expect(got.cacheControl).toBe(attributes.cacheControl);
    expect({ ...got.metadata }).toEqual(attributes.metadata);
    if (emulator !== 'fake-gcs-server') expect({ ...got.tags }).toEqual(attributes.tags);
  });

  it('writes 0-byte and multipart-sized bodies streamed, byte-exact', async () => {
    await store.put('empty', (async function* () {})());
    expect((await readAll((await store.get('empty')).body)).length).toBe(0);
    const big = randomBytes(12 * 1024 * 1024 + 17);
    async function* chunks() {
      for (let at = 0; at < big.length; at += 1_000_003) yield big.subarray(at, at + 1_000_003);
    }
    await store.put('big', chunks(), { attributes });
    const got = await store.get('big');
    const back = await readAll(got.body);
    expect(createHash('sha256').update(back).digest('hex')).toBe(
      createHash('sha256').update(big).digest('hex'),
    );
    expect({ ...got.metadata }).toEqual(attributes.metadata);
  });

  it('refuses a write conditioned on a version that is no longer current (single and multipart)', async () => {
    const first = await store.put('cond', Buffer.from('one'));
    const read = await store.get('cond');
    read.cancel();
    expect(read.version).toBe(first.version);
    await store.put('cond', Buffer.from('two, by someone else'));
    await expect(
      store.put('cond', Buffer.from('three'), { condition: { ifVersion: read.version } }),
    ).rejects.toBeInstanceOf(ObjectChangedError);
    const big = randomBytes(11 * 1024 * 1024);
    await expect(
      store.put(
        'cond',
        (async function* () {
          yield big.subarray(0, 6e6);
          yield big.subarray(6e6);
        })(),
        {
          condition: { ifVersion: read.version },
        },
      ),
    ).rejects.toBeInstanceOf(ObjectChangedError);
    expect((await readAll((await store.get('cond')).body)).toString()).toBe('two, by someone else');
    const now = await store.get('cond');
    now.cancel();
    await store.put('cond', Buffer.from('four'), { condition: { ifVersion: now.version } });
    expect((await readAll((await store.get('cond')).body)).toString()).toBe('four');
  });

  it('a streamed write overtaken mid-upload by another writer lands whole or fails as changed, never otherwise', async () => {
    const big = randomBytes(11 * 1024 * 1024);
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const streamed = store
      .put(
        'raced',
        (async function* () {
          yield big.subarray(0, 6e6);
          await gate; // the first part is being uploaded (Azure: a staged, uncommitted block)
          yield big.subarray(6e6);
        })(),
      )
      .then(
        () => 'landed',
        (e: unknown) => e,
      );
    await new Promise((r) => setTimeout(r, 1500));
    // Bytes that fit one part go up in one request, whatever the streamed upload is doing.
    await store.put('raced', Buffer.from('by someone else'));
    release();
    const outcome = await streamed;
    if (outcome !== 'landed') expect(outcome).toBeInstanceOf(ObjectChangedError);
    const now = await readAll((await store.get('raced')).body);
    expect(now.equals(outcome === 'landed' ? big : Buffer.from('by someone else'))).toBe(true);
  });

  it('create-only writes fail when the object exists', async () => {
    await store.put('once', Buffer.from('a'), { condition: { ifAbsent: true } });
    await expect(
      store.put('once', Buffer.from('b'), { condition: { ifAbsent: true } }),
    ).rejects.toBeInstanceOf(ObjectChangedError);
  });

  // Regression: @google-cloud/storage destroys its shared keep-alive agent when any read stream
  // ends early, which cut every other download of the process ("aborted"). A migration cancels
  // reads all the time (a header that says "done" or "not an envelope"), so a large object read
  // slowly while its upload runs never got through.
  it('cancelling reads leaves the other reads in flight untouched, a slow back-pressured one included', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    const big = randomBytes(16 * 1024 * 1024);
    await store.put('slow', big);
    await store.put('peeked', randomBytes(1024 * 1024));
    const slow = await store.get('slow');
    const reading = (async () => {
      const h = createHash('sha256');
      let n = 0;
      for await (const chunk of slow.body) {
        h.update(chunk);
        // Back-pressured as by an upload that waits: a pause longer than Node's keep-alive
        // agent's socket timeout (5 s) first, then short ones.
        const pause = n === 0 ? 6000 : 2;
        n++;
        await new Promise((r) => setTimeout(r, pause));
      }
      return h.digest('hex');
    })();
    for (let i = 0; i < 15; i++) {
      const peek = await store.get('peeked');
      for await (const _ of peek.body) break;
      peek.cancel();
      await store.put(`written-meanwhile-${i}`, Buffer.from('x'));
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await reading).toBe(createHash('sha256').update(big).digest('hex'));
    process.off('warning', onWarning);
    // Nor does any read pile up listeners ("possible EventEmitter memory leak").
    expect(warnings.filter((w) => w.includes('MaxListeners'))).toEqual([]);
  }, 60_000);

  it('an object overwritten between get and reading its body reads as it was got, or fails as changed (never as missing)', async () => {
    await store.put('race/x', Buffer.from('first'));
    const read = await store.get('race/x');
    await store.put('race/x', Buffer.from('second, longer'));
    // GCS reads the generation whose metadata get took: once overwritten, that generation is gone.
    const outcome = await readAll(read.body).then(
      (b) => b.toString(),
      (e: unknown) => e,
    );
    if (typeof outcome === 'string') expect(outcome).toBe('first');
    else expect(outcome).toBeInstanceOf(ObjectChangedError);
    if (emulator === 'fake-gcs-server') expect(outcome).toBeInstanceOf(ObjectChangedError);
  });

  it('a missing object is NotFound', async () => {
    await expect(store.get('nope')).rejects.toMatchObject({ code: 'NotFound' });
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectCode, grpc, type Harness, LOCATION, newKeyRing, startHarness } from './gcp-support.js';

describe('Cloud KMS server: key rings', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  it('creates a key ring and gets it back', async () => {
    const [ring] = await h.client.createKeyRing({ parent: LOCATION, keyRingId: 'ring-a', keyRing: {} });
    expect(ring.name).toBe(`${LOCATION}/keyRings/ring-a`);
    expect(Number(ring.createTime?.seconds)).toBeGreaterThan(0);
    const [got] = await h.client.getKeyRing({ name: ring.name! });
    expect(got.name).toBe(ring.name);
  });

  it('refuses a duplicate key ring with ALREADY_EXISTS', async () => {
    await h.client.createKeyRing({ parent: LOCATION, keyRingId: 'ring-dup', keyRing: {} });
    await expectCode(
      h.client.createKeyRing({ parent: LOCATION, keyRingId: 'ring-dup', keyRing: {} }),
      grpc.status.ALREADY_EXISTS,
    );
  });

  it('refuses a malformed id or parent with INVALID_ARGUMENT', async () => {
    await expectCode(
      h.client.createKeyRing({ parent: LOCATION, keyRingId: 'bad id!', keyRing: {} }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(
      h.client.createKeyRing({ parent: LOCATION, keyRingId: 'x'.repeat(64), keyRing: {} }),
      grpc.status.INVALID_ARGUMENT,
    );
    await expectCode(
      h.client.createKeyRing({ parent: 'projects/p', keyRingId: 'ok', keyRing: {} }),
      grpc.status.INVALID_ARGUMENT,
    );
  });

  it('answers NOT_FOUND for a key ring that does not exist', async () => {
    await expectCode(h.client.getKeyRing({ name: `${LOCATION}/keyRings/nope` }), grpc.status.NOT_FOUND);
  });

  it('page tokens name the next item: deleting or creating keys while paging skips and repeats nothing', async () => {
    const parent = await newKeyRing(h.client);
    const create = (id: string) =>
      h.client.createCryptoKey({
        parent,
        cryptoKeyId: id,
        cryptoKey: { purpose: 'ENCRYPT_DECRYPT' },
        skipInitialVersionCreation: true,
      });
    const ids = Array.from({ length: 9 }, (_, i) => `k${i}`);
    for (const id of ids) await create(id);
    // Delete every key of a page before asking for the next one (an offset would skip keys).
    const seen: string[] = [];
    let token: string | undefined;
    do {
      const [keys, , raw] = await h.client.listCryptoKeys(
        { parent, pageSize: 2, ...(token ? { pageToken: token } : {}) },
        { autoPaginate: false },
      );
      for (const k of keys) {
        seen.push(k.name!.slice(k.name!.lastIndexOf('/') + 1));
        await h.client.deleteCryptoKey({ name: k.name! });
      }
      token = raw?.nextPageToken || undefined;
    } while (token);
    expect(seen).toEqual(ids);
    // A key created behind the cursor is not listed, and nothing is listed twice.
    for (const id of ['m1', 'm3', 'm5']) await create(id);
    const [first, , raw] = await h.client.listCryptoKeys({ parent, pageSize: 2 }, { autoPaginate: false });
    await create('m0');
    const [rest] = await h.client.listCryptoKeys(
      { parent, pageSize: 10, pageToken: raw!.nextPageToken! },
      { autoPaginate: false },
    );
    expect([...first, ...rest].map((k) => k.name!.slice(k.name!.lastIndexOf('/') + 1))).toEqual([
      'm1',
      'm3',
      'm5',
    ]);
  });

  it('lists key rings in pages with next_page_token', async () => {
    const parent = 'projects/keyport-paging/locations/global';
    for (let i = 0; i < 5; i++) {
      await h.client.createKeyRing({ parent, keyRingId: `ring-${i}`, keyRing: {} });
    }
    const [first, , raw] = await h.client.listKeyRings({ parent, pageSize: 2 }, { autoPaginate: false });
    expect(first.map((r) => r.name)).toEqual([`${parent}/keyRings/ring-0`, `${parent}/keyRings/ring-1`]);
    expect(raw?.totalSize).toBe(5);
    expect(raw?.nextPageToken).toBeTruthy();
    const [second] = await h.client.listKeyRings(
      { parent, pageSize: 2, pageToken: raw!.nextPageToken! },
      { autoPaginate: false },
    );
    expect(second.map((r) => r.name)).toEqual([`${parent}/keyRings/ring-2`, `${parent}/keyRings/ring-3`]);
    const all: string[] = [];
    for await (const ring of h.client.listKeyRingsAsync({ parent, pageSize: 2 })) all.push(ring.name!);
    expect(all).toHaveLength(5);
    await expectCode(
      h.client.listKeyRings({ parent, pageToken: 'forged' }, { autoPaginate: false }),
      grpc.status.INVALID_ARGUMENT,
    );
  });

  it('answers UNIMPLEMENTED for an RPC it does not emulate', async () => {
    await expectCode(
      h.client.rawEncrypt({
        name: `${LOCATION}/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1`,
        plaintext: Buffer.from('x'),
      }),
      grpc.status.UNIMPLEMENTED,
    );
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectCode, grpc, type Harness, LOCATION, startHarness } from './gcp-support.js';

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

/**
 * A consumer that stops reading part-way (a `break`, a failed write): the verified plaintext it
 * was not given (the rest of a frame's pieces, a signed message's held final frame, frames still
 * in flight) is zeroed rather than left to the garbage collector.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openStream, sealEnvelope } from '../src/index.js';
import { handOut } from '../src/open.js';
import { aes, chunked } from './helpers/keys.js';

afterEach(() => vi.restoreAllMocks());

describe('handOut', () => {
  it('zeroes the pieces it did not give when the consumer stops, and only those', () => {
    const pieces = [Buffer.alloc(4, 1), Buffer.alloc(0), Buffer.alloc(4, 2), Buffer.alloc(4, 3)];
    const it = handOut(pieces);
    expect(it.next().value).toBe(pieces[0]);
    it.return();
    expect([...(pieces[0] as Buffer)]).toEqual([1, 1, 1, 1]);
    expect([...(pieces[2] as Buffer)]).toEqual([0, 0, 0, 0]);
    expect([...(pieces[3] as Buffer)]).toEqual([0, 0, 0, 0]);
  });
  it('zeroes nothing when every piece was given, and skips empty pieces', () => {
    const pieces = [Buffer.alloc(2, 5), Buffer.alloc(0), Buffer.alloc(2, 6)];
    expect([...handOut(pieces)].map((p) => p.length)).toEqual([2, 2]);
    expect([...(pieces[2] as Buffer)]).toEqual([6, 6]);
  });
});

describe('openStream stopped part-way', () => {
  const FRAME = 256 * 1024;
  for (const [suite, concurrency] of [
    [0x0478, 1],
    [0x0578, 1],
    [0x0578, 2],
  ] as const) {
    it(`suite 0x0${suite.toString(16)}, concurrency ${concurrency}: the plaintext not given is zeroed`, async () => {
      const pt = randomBytes(3 * FRAME + 1000);
      const msg = await sealEnvelope(pt, { recipients: [aes], suite, frameLength: FRAME, concurrency: 1 });
      let stopped = false;
      const zeroed: Uint8Array[] = [];
      const fill = Buffer.prototype.fill as (this: Buffer, ...a: unknown[]) => Buffer;
      vi.spyOn(Buffer.prototype, 'fill').mockImplementation(function (this: Buffer, ...a: unknown[]) {
        if (stopped && a[0] === 0 && this.length > 0) zeroed.push(this);
        return fill.apply(this, a);
      });
      const got: Uint8Array[] = [];
      const stream = openStream(chunked(msg, 100_000), { trust: [aes], concurrency });
      for await (const p of stream) {
        got.push(p);
        stopped = true;
        break; // after the first piece of the first frame
      }
      // Frames still in flight are zeroed when they come back from a worker.
      await new Promise((r) => setTimeout(r, 100));
      const first = got[0] as Uint8Array;
      expect(Buffer.from(first).equals(pt.subarray(0, first.length))).toBe(true);
      expect(zeroed.every((z) => z.every((b) => b === 0))).toBe(true);
      const bytes = zeroed.reduce((n, z) => n + z.length, 0);
      if (concurrency === 1) {
        // The first frame's other pieces were verified and never given.
        expect(first.length).toBeLessThan(FRAME);
        expect(bytes).toBeGreaterThanOrEqual(FRAME - first.length);
      } else {
        // A worker's frame is one piece; the frames read ahead were in flight.
        expect(first.length).toBe(FRAME);
        expect(zeroed.some((z) => z.length === FRAME)).toBe(true);
      }
    });
  }
});

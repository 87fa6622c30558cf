/**
 * Inputs already in shared memory (a SharedArrayBuffer, as every parallel seal or open returns):
 * the frame pool's workers read frames where they are, with no copy into the ring, and the
 * results and refusals are the sequential path's. Its own file: the pool (and its ring) start
 * fresh here.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { framePoolForTests, sharedBuffer } from '../src/frame-pool.js';
import { bodySize } from '../src/frames.js';
import { parseHeader } from '../src/header.js';
import { openEnvelope, sealEnvelope } from '../src/index.js';
import { resolveLimits } from '../src/limits.js';
import { PARALLEL_MIN_BYTES, sealFramesParallel } from '../src/parallel.js';
import { aes } from './helpers/keys.js';

const F = 100_000;
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: { code?: string }) => e.code,
  );

/** `bytes` copied into shared memory at byte `offset` of its buffer. */
function shared(bytes: Uint8Array, offset = 3): Buffer {
  const b = Buffer.from(new SharedArrayBuffer(bytes.length + offset), offset, bytes.length);
  b.set(bytes);
  return b;
}

describe('shared inputs on the frame pool', () => {
  it('workers seal shared plaintext where it is: no ring, the bytes of the copying path', async () => {
    const key = randomBytes(32);
    const messageId = randomBytes(32);
    const plaintext = randomBytes(60 * F + 17);
    const inShared = shared(plaintext, 5);
    const size = bodySize(plaintext.length, F);
    const fromShared = sharedBuffer(size);
    // The first jobs may finish before a new thread has started; workers join within a few.
    for (let attempt = 0; attempt < 20 && framePoolForTests().workers.length === 0; attempt++) {
      expect(sealFramesParallel(key, messageId, F, inShared, fromShared, 0, 2)).toBe(size);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(sealFramesParallel(key, messageId, F, inShared, fromShared, 0, 2)).toBe(size);
    expect(framePoolForTests().workers.length).toBeGreaterThan(0);
    // No ring was made: nothing of the plaintext was copied for the workers.
    expect(framePoolForTests().ring).toBeUndefined();
    // The same plaintext from ordinary memory (copied through the ring) gives the same bytes.
    const fromCopy = sharedBuffer(size);
    expect(sealFramesParallel(key, messageId, F, plaintext, fromCopy, 0, 2)).toBe(size);
    expect(framePoolForTests().ring).toBeDefined();
    expect(fromShared.equals(fromCopy)).toBe(true);
  });

  it('a shared message opens as on the sequential path; its bad frames, truncation and trailing bytes are refused the same way', async () => {
    const pt = randomBytes(PARALLEL_MIN_BYTES + 5000);
    const msg = Buffer.from(await sealEnvelope(pt, { recipients: [aes], frameLength: F, concurrency: 1 }));
    const h = parseHeader(msg, resolveLimits());
    if (h === undefined) throw new Error('no header');
    const frame = 4 + 12 + F + 16;
    const flipped = (at: number) => {
      const b = Buffer.from(msg);
      b[at] = (b[at] as number) ^ 1;
      return b;
    };
    const cases: Array<[string, Buffer]> = [
      ['intact', msg],
      ['flip in frame 1', flipped(h.length + 100)],
      ['flip in frame 8 IV', flipped(h.length + 7 * frame + 6)],
      ['flip in frame 31 tag', flipped(h.length + 31 * frame - 3)],
      ['flip in the final frame IV', flipped(h.length + 41 * frame + 10)],
      ['flip in the final frame content length', flipped(h.length + 41 * frame + 23)],
      ['flip in the last tag', flipped(msg.length - 1)],
      ['truncated', msg.subarray(0, msg.length - 1)],
      ['trailing byte', Buffer.concat([msg, Buffer.of(0)])],
      [
        'frame 2 dropped',
        Buffer.concat([msg.subarray(0, h.length + frame), msg.subarray(h.length + 2 * frame)]),
      ],
    ];
    for (const [name, bad] of cases) {
      const sequential = await codeOf(openEnvelope(bad, { trust: [aes], concurrency: 1 }));
      for (const offset of [0, 3]) {
        const parallel = await codeOf(openEnvelope(shared(bad, offset), { trust: [aes], concurrency: 2 }));
        expect(parallel, `${name} at offset ${offset}`).toBe(sequential);
      }
      if (name === 'intact') {
        expect(sequential).toBe('ok');
        const out = await openEnvelope(shared(bad), { trust: [aes], concurrency: 2 });
        expect(Buffer.from(out.plaintext).equals(pt)).toBe(true);
      } else {
        expect(sequential, name).not.toBe('ok');
      }
    }
  }, 60_000);

  it('a one-frame message followed by megabytes of junk is refused as on the sequential path', async () => {
    // Long enough for the pool by size, yet one (final) frame: its content is 8 bytes further
    // into its frame than a regular frame's.
    const msg = Buffer.from(
      await sealEnvelope(randomBytes(1000), { recipients: [aes], frameLength: 4096, concurrency: 1 }),
    );
    const junk = Buffer.concat([msg, randomBytes(PARALLEL_MIN_BYTES)]);
    const sequential = await codeOf(openEnvelope(junk, { trust: [aes], concurrency: 1 }));
    expect(sequential).not.toBe('ok');
    expect(await codeOf(openEnvelope(shared(junk), { trust: [aes], concurrency: 2 }))).toBe(sequential);
  });

  it('a parallel seal opens in parallel from the shared result, and that plaintext reseals', async () => {
    const pt = randomBytes(PARALLEL_MIN_BYTES + 12_345);
    const sealed = await sealEnvelope(pt, { recipients: [aes], frameLength: F, concurrency: 2 });
    expect(sealed.buffer).toBeInstanceOf(SharedArrayBuffer);
    const opened = await openEnvelope(sealed, { trust: [aes], concurrency: 2 });
    expect(opened.plaintext.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(Buffer.from(opened.plaintext).equals(pt)).toBe(true);
    const again = await sealEnvelope(opened.plaintext, { recipients: [aes], frameLength: F, concurrency: 2 });
    const back = await openEnvelope(again, { trust: [aes], concurrency: 1 });
    expect(Buffer.from(back.plaintext).equals(pt)).toBe(true);
  }, 60_000);
});

/**
 * The frame pool (whole buffers with `concurrency` > 1): worker threads really run frames, the
 * bytes are the sequential path's, a pool whose threads died is rebuilt, concurrent calls share
 * it safely, and no copy of the caller's data stays in its ring.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bodyAad, FINAL_FRAME_STRING, FRAME_STRING, sealInto } from '../src/aead.js';
import {
  CTL,
  type FrameJob,
  framePoolForTests,
  type RunFrame,
  runFrameJob,
  sharedBuffer,
} from '../src/frame-pool.js';
import { FRAME_WORKER_SOURCE } from '../src/frame-worker-source.js';
import { bodySize, FrameSealer } from '../src/frames.js';
import { openEnvelope, sealEnvelope } from '../src/index.js';
import { PARALLEL_MIN_BYTES, sealFramesParallel } from '../src/parallel.js';
import { aes } from './helpers/keys.js';

const F = 64 * 1024;

function sequentialBody(key: Uint8Array, messageId: Uint8Array, plaintext: Uint8Array): Buffer {
  const sealer = new FrameSealer(key, messageId, F);
  const out = Buffer.alloc(bodySize(plaintext.length, F));
  let at = 0;
  let offset = 0;
  while (plaintext.length - offset > F) {
    at = sealer.writeFrame(out, at, plaintext.subarray(offset, offset + F), false);
    offset += F;
  }
  sealer.writeFrame(out, at, plaintext.subarray(offset), true);
  return out;
}

/** A seal job over `plaintext` (content and tags only; prefixes are the caller's part). */
function sealJob(
  key: Uint8Array,
  messageId: Uint8Array,
  plaintext: Uint8Array,
  out: Buffer,
  runFrame?: RunFrame,
): FrameJob {
  const count = Math.ceil(plaintext.length / F);
  const regular = F + 32;
  const content = (i: number) => plaintext.subarray(i * F, Math.min(plaintext.length, (i + 1) * F));
  return {
    seal: true,
    key,
    messageId,
    count,
    frameLength: F,
    lastLength: plaintext.length - (count - 1) * F,
    lastFinal: true,
    outBase: 16,
    outStride: regular,
    lastShift: 8,
    out,
    inputShift: 0,
    copyFrame: (i, slot) => slot.set(content(i)),
    runFrame:
      runFrame ??
      ((i) => {
        const final = i === count - 1;
        const iv = Buffer.alloc(12);
        iv.writeUInt32BE(i + 1, 8);
        const aad = bodyAad(messageId, final ? FINAL_FRAME_STRING : FRAME_STRING, i + 1, content(i).length);
        sealInto(key, iv, aad, content(i), out, i * regular + (final ? 24 : 16));
        return true;
      }),
  };
}

describe('frame pool', () => {
  it('the worker source uses the control words the pool writes', () => {
    const line = /const NEXT = (\d+), COPIED = (\d+), DONE = (\d+), STOP = (\d+), FIRST_BAD = (\d+);/.exec(
      FRAME_WORKER_SOURCE,
    );
    expect(line?.slice(1).map(Number)).toEqual([CTL.NEXT, CTL.COPIED, CTL.DONE, CTL.STOP, CTL.FIRST_BAD]);
  });

  it('worker threads run frames, and the body is byte for byte the sequential one', async () => {
    const key = randomBytes(32);
    const messageId = randomBytes(32);
    const plaintext = randomBytes(200 * F + 123);
    const expected = sequentialBody(key, messageId, plaintext);
    let workerFrames = 0;
    // The first jobs may finish before a new thread has started; workers join within a few.
    for (let attempt = 0; attempt < 20 && workerFrames === 0; attempt++) {
      const out = sharedBuffer(expected.length);
      const at = sealFramesParallel(key, messageId, F, plaintext, out, 0, 2);
      expect(at).toBe(expected.length);
      expect(out.equals(expected)).toBe(true);
      // The same job through runFrameJob directly, to see who ran the frames.
      const direct = sharedBuffer(expected.length);
      const count = Math.ceil(plaintext.length / F);
      const regular = F + 32;
      const result = runFrameJob(sealJob(key, messageId, plaintext, direct), 1);
      expect(result?.firstBad).toBe(-1);
      workerFrames = result?.workerFrames ?? 0;
      // Content and tags match wherever the job wrote (prefixes are the caller's part).
      for (let i = 0; i < count - 1; i++) {
        const s = i * regular + 16;
        expect(direct.subarray(s, s + F + 16).equals(expected.subarray(s, s + F + 16))).toBe(true);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(workerFrames).toBeGreaterThan(0);
  });

  it('whole-buffer results with concurrency > 1 come from the pool (shared memory) and open anywhere', async () => {
    const pt = randomBytes(PARALLEL_MIN_BYTES + 777);
    const sealed = await sealEnvelope(pt, { recipients: [aes], frameLength: F, concurrency: 2 });
    expect(sealed.buffer).toBeInstanceOf(SharedArrayBuffer);
    const sequential = await sealEnvelope(pt, { recipients: [aes], frameLength: F, concurrency: 1 });
    expect(sequential.buffer).toBeInstanceOf(ArrayBuffer);
    const opened = await openEnvelope(sealed, { trust: [aes], concurrency: 2 });
    expect(opened.plaintext.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(Buffer.from(opened.plaintext).equals(pt)).toBe(true);
    expect(
      Buffer.from((await openEnvelope(sealed, { trust: [aes], concurrency: 1 })).plaintext).equals(pt),
    ).toBe(true);
  });

  it('the ring holds no copy of the plaintext after a seal', async () => {
    const pt = Buffer.alloc(PARALLEL_MIN_BYTES + 99, 0xa5);
    await sealEnvelope(pt, { recipients: [aes], frameLength: F, concurrency: 2 });
    const ring = framePoolForTests().ring;
    expect(ring).toBeDefined();
    expect(ring?.some((b) => b !== 0)).toBe(false);
  });

  it('a pool whose threads died is rebuilt; the next calls are still right', async () => {
    const pt = randomBytes(PARALLEL_MIN_BYTES + 5);
    await sealEnvelope(pt, { recipients: [aes], frameLength: F, concurrency: 2 });
    const { workers } = framePoolForTests();
    expect(workers.length).toBeGreaterThan(0);
    await Promise.all(workers.map((w) => w.terminate()));
    for (let i = 0; i < 3; i++) {
      const sealed = await sealEnvelope(pt, { recipients: [aes], frameLength: F, concurrency: 2 });
      const opened = await openEnvelope(sealed, { trust: [aes], concurrency: 2 });
      expect(Buffer.from(opened.plaintext).equals(pt)).toBe(true);
    }
    expect(framePoolForTests().workers.every((w) => !workers.includes(w))).toBe(true);
  });

  it('a failure on the calling thread mid-job releases the workers; the next job runs on the pool', async () => {
    const key = randomBytes(32);
    const messageId = randomBytes(32);
    const plaintext = randomBytes(100 * F);
    let calls = 0;
    const failing = sealJob(key, messageId, plaintext, sharedBuffer(plaintext.length * 2), () => {
      if (++calls === 3) throw new Error('boom');
      return true;
    });
    expect(() => runFrameJob(failing, 1)).toThrow('boom');
    let workerFrames = 0;
    for (let attempt = 0; attempt < 20 && workerFrames === 0; attempt++) {
      const expected = sequentialBody(key, messageId, plaintext);
      const out = sharedBuffer(expected.length);
      const result = runFrameJob(sealJob(key, messageId, plaintext, out), 1);
      expect(result?.firstBad).toBe(-1);
      workerFrames = result?.workerFrames ?? 0;
      expect(out.subarray(16, 16 + F + 16).equals(expected.subarray(16, 16 + F + 16))).toBe(true);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(workerFrames).toBeGreaterThan(0);
  });

  it('many calls at once: each gets its own right answer (the pool takes one job at a time)', async () => {
    const inputs = Array.from({ length: 6 }, () => randomBytes(PARALLEL_MIN_BYTES + 31));
    const sealed = await Promise.all(
      inputs.map((pt, i) =>
        sealEnvelope(pt, { recipients: [aes], frameLength: F, concurrency: 1 + (i % 3) }),
      ),
    );
    const opened = await Promise.all(
      sealed.map((m, i) => openEnvelope(m, { trust: [aes], concurrency: 2 + (i % 2) })),
    );
    expect(opened.map((o) => Buffer.from(o.plaintext).equals(inputs[opened.indexOf(o)] as Buffer))).toEqual(
      inputs.map(() => true),
    );
  });
});

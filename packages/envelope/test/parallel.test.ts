/**
 * `concurrency`: whole buffers of 4 MiB or more are sealed and opened on the frame pool, streams
 * with frames in flight on stream workers. The format is unchanged (ESDK-JS opens the result,
 * keyport's sequential path opens it), every hostile case the sequential path refuses is refused
 * the same way, and no plaintext is returned from a message with any bad frame.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { parseHeader } from '../src/header.js';
import { openEnvelope, openStream, sealEnvelope, sealStream } from '../src/index.js';
import { resolveLimits } from '../src/limits.js';
import { PARALLEL_MIN_BYTES } from '../src/parallel.js';
import { esdkDecrypt, esdkEncrypt, stopEsdk } from './helpers/esdk.js';
import { aes, esdkAesKeyring } from './helpers/keys.js';

afterAll(stopEsdk);

const esdkAes = esdkAesKeyring(true);
const F = 100_000;
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: { code?: string }) => e.code,
  );

describe('parallel seal and open', () => {
  for (const suite of [0x0478, 0x0578] as const) {
    for (const size of [PARALLEL_MIN_BYTES + 12_345, 48 * F]) {
      it(`suite ${suite.toString(16)}, ${size} bytes: parallel and sequential paths agree, ESDK-JS opens both`, async () => {
        const pt = randomBytes(size);
        const context = { run: 'parallel' };
        const par = await sealEnvelope(pt, {
          recipients: [aes],
          suite,
          frameLength: F,
          context,
          concurrency: 4,
        });
        const seq = await sealEnvelope(pt, {
          recipients: [aes],
          suite,
          frameLength: F,
          context,
          concurrency: 1,
        });
        // Same layout (signed messages differ by the DER signature's length only).
        if (suite === 0x0478) expect(par.length).toBe(seq.length);
        for (const msg of [par, seq]) {
          for (const concurrency of [1, 2, 4]) {
            const out = await openEnvelope(msg, { trust: [aes], concurrency });
            expect(Buffer.from(out.plaintext).equals(pt)).toBe(true);
            expect(out.frameLength).toBe(F);
          }
          const e = await esdkDecrypt([esdkAes], msg);
          expect(e.plaintext.equals(pt)).toBe(true);
        }
      }, 60_000);
    }
  }

  it('inputs at any byte offset seal and open on the pool as on the sequential path; frame contents land 8-byte aligned', async () => {
    const size = PARALLEL_MIN_BYTES + 777;
    const backing = randomBytes(size + 16);
    for (const frameLength of [F, F + 3]) {
      for (const offset of [1, 3, 8]) {
        // Views that start at odd addresses: copies into the pool's shared ring are shifted to
        // keep their alignment, and the worker reads from the same shifted place.
        const pt = backing.subarray(offset, offset + size);
        const par = await sealEnvelope(pt, { recipients: [aes], frameLength, concurrency: 2 });
        expect(par.buffer).toBeInstanceOf(SharedArrayBuffer);
        const header = parseHeader(par, resolveLimits());
        if (header === undefined) throw new Error('no header');
        if (frameLength % 8 === 0) expect((par.byteOffset + header.length + 16) % 8).toBe(0);
        const seq = await openEnvelope(par, { trust: [aes], concurrency: 1 });
        expect(Buffer.from(seq.plaintext).equals(pt)).toBe(true);
        const moved = Buffer.alloc(par.length + offset);
        moved.set(par, offset);
        const view = moved.subarray(offset);
        const opened = await openEnvelope(view, { trust: [aes], concurrency: 2 });
        expect(Buffer.from(opened.plaintext).equals(pt)).toBe(true);
        // A flipped byte in the last frame is still caught through the shifted slots.
        view[view.length - 20] = (view[view.length - 20] as number) ^ 1;
        expect(await codeOf(openEnvelope(view, { trust: [aes], concurrency: 2 }))).toBe('Integrity');
      }
    }
  }, 60_000);

  it('ESDK-JS messages open in parallel', async () => {
    const pt = randomBytes(PARALLEL_MIN_BYTES + 1);
    const msg = await esdkEncrypt([esdkAes], pt, { frameLength: 65_536, suiteId: 0x0478 });
    const out = await openEnvelope(msg, { trust: [aes], concurrency: 3 });
    expect(Buffer.from(out.plaintext).equals(pt)).toBe(true);
  }, 60_000);

  it('a bad frame anywhere, truncation, reordering and trailing bytes are refused as on the sequential path', async () => {
    const pt = randomBytes(PARALLEL_MIN_BYTES + 5000);
    const msg = Buffer.from(await sealEnvelope(pt, { recipients: [aes], frameLength: F, concurrency: 2 }));
    const h = parseHeader(msg, resolveLimits());
    if (h === undefined) throw new Error('no header');
    const frame = 4 + 12 + F + 16;
    const cases: Array<[string, Buffer]> = [];
    for (const k of [0, 7, 30, 40]) {
      const bad = Buffer.from(msg);
      flipAt(bad, h.length + k * frame + 100);
      cases.push([`flip in frame ${k + 1}`, bad]);
    }
    const tagFlip = Buffer.from(msg);
    flipAt(tagFlip, msg.length - 1);
    cases.push(['flip in the last tag', tagFlip]);
    cases.push(['truncated', msg.subarray(0, msg.length - 1)]);
    cases.push(['trailing byte', Buffer.concat([msg, Buffer.of(0)])]);
    const swapped = Buffer.from(msg);
    msg.copy(swapped, h.length + 3 * frame, h.length + 4 * frame, h.length + 5 * frame);
    msg.copy(swapped, h.length + 4 * frame, h.length + 3 * frame, h.length + 4 * frame);
    cases.push(['frames 4 and 5 swapped', swapped]);
    const dropped = Buffer.concat([msg.subarray(0, h.length + frame), msg.subarray(h.length + 2 * frame)]);
    cases.push(['frame 2 dropped', dropped]);
    // Structure broken late, a bad tag early: the early frame's Integrity error comes first.
    const both = Buffer.from(truncatedLate(msg));
    flipAt(both, h.length + 2 * frame + 50);
    cases.push(['bad frame 3 and truncated', both]);
    for (const [name, bad] of cases) {
      const sequential = await codeOf(openEnvelope(bad, { trust: [aes], concurrency: 1 }));
      const parallel = await codeOf(openEnvelope(bad, { trust: [aes], concurrency: 4 }));
      expect(sequential, name).not.toBe('ok');
      expect(parallel, name).toBe(sequential);
    }
  }, 60_000);

  it('the data key is unwrapped once, whichever path the size and frame count choose', async () => {
    let unwraps = 0;
    const counted = {
      ...aes,
      unwrap: (...a: Parameters<typeof aes.unwrap>) => {
        unwraps++;
        return aes.unwrap(...a);
      },
    };
    for (const frameLength of [F, 4 * 1024 * 1024]) {
      const pt = randomBytes(PARALLEL_MIN_BYTES + 10);
      const msg = await sealEnvelope(pt, { recipients: [aes], frameLength });
      unwraps = 0;
      const out = await openEnvelope(msg, { trust: [counted], concurrency: 4 });
      expect(Buffer.from(out.plaintext).equals(pt)).toBe(true);
      expect(unwraps).toBe(1);
    }
  });

  it('concurrency must be an integer from 1 to 64', async () => {
    const msg = await sealEnvelope(Buffer.from('x'), { recipients: [aes] });
    for (const concurrency of [0, -1, 1.5, Number.NaN, 65, '2' as unknown as number]) {
      expect(await codeOf(sealEnvelope(Buffer.from('x'), { recipients: [aes], concurrency }))).toBe(
        'InvalidArgument',
      );
      expect(await codeOf(openEnvelope(msg, { trust: [aes], concurrency }))).toBe('InvalidArgument');
    }
  });
});

function flipAt(b: Buffer, at: number): void {
  if (at >= b.length) throw new Error('flip outside the message');
  b[at] = (b[at] as number) ^ 1;
}

function truncatedLate(msg: Buffer): Buffer {
  return msg.subarray(0, msg.length - 20);
}

describe('streams with frames in flight', () => {
  const G = 64 * 1024;
  async function* cut(data: Uint8Array, sizes: number[]): AsyncGenerator<Uint8Array> {
    let at = 0;
    for (let i = 0; at < data.length; i++) {
      const n = sizes[i % sizes.length] as number;
      yield data.subarray(at, at + n);
      at += n;
    }
  }
  const collectAll = async (it: AsyncIterable<Uint8Array>): Promise<Buffer> => {
    const parts: Uint8Array[] = [];
    for await (const p of it) parts.push(Buffer.from(p));
    return Buffer.concat(parts);
  };

  for (const suite of [0x0478, 0x0578] as const) {
    for (const size of [0, 1, G, 20 * G, 20 * G + 7]) {
      it(`sealStream/openStream, suite ${suite.toString(16)}, ${size} bytes: in flight = sequential, ESDK-JS opens it`, async () => {
        const pt = randomBytes(size);
        const msg = await collectAll(
          sealStream(cut(pt, [1000, 70_000, 3]), {
            recipients: [aes],
            suite,
            frameLength: G,
            concurrency: 3,
          }),
        );
        expect((await esdkDecrypt([esdkAes], msg)).plaintext.equals(pt)).toBe(true);
        for (const concurrency of [1, 3]) {
          const out = await collectAll(openStream(cut(msg, [5000, 100_000]), { trust: [aes], concurrency }));
          expect(out.equals(pt)).toBe(true);
        }
      }, 60_000);
    }
  }

  it('a bad frame: only the frames before it are released; structure errors after the verified frames', async () => {
    const pt = randomBytes(30 * G + 11);
    const msg = Buffer.from(await sealEnvelope(pt, { recipients: [aes], frameLength: G, concurrency: 1 }));
    const h = parseHeader(msg, resolveLimits());
    if (h === undefined) throw new Error('no header');
    const frame = 4 + 12 + G + 16;
    for (const k of [0, 5, 17]) {
      const bad = Buffer.from(msg);
      flipAt(bad, h.length + k * frame + 40);
      const released: Buffer[] = [];
      const err = await (async () => {
        for await (const p of openStream(cut(bad, [9000]), { trust: [aes], concurrency: 4 }))
          released.push(Buffer.from(p));
      })().catch((e: { code?: string }) => e);
      expect((err as { code?: string }).code).toBe('Integrity');
      expect(Buffer.concat(released).equals(pt.subarray(0, k * G))).toBe(true);
    }
    const dropped = Buffer.concat([
      msg.subarray(0, h.length + 9 * frame),
      msg.subarray(h.length + 10 * frame),
    ]);
    const released: Buffer[] = [];
    const err = await (async () => {
      for await (const p of openStream(cut(dropped, [9000]), { trust: [aes], concurrency: 4 }))
        released.push(Buffer.from(p));
    })().catch((e: { code?: string }) => e);
    expect((err as { code?: string }).code).toBe('InvalidCiphertext');
    expect(Buffer.concat(released).equals(pt.subarray(0, 9 * G))).toBe(true);
  }, 60_000);
});

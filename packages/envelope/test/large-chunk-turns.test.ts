/**
 * A source whose LARGE chunks are all at hand (a buffered Readable, a generator over a buffer) is
 * read on the microtask queue alone, like an endless run of empty chunks (see
 * endless-empty-chunks.test.ts). A turn of the event loop only every 4096 chunks was 4 GiB of
 * AES at 1 MiB chunks: no timer fired meanwhile, so `AbortSignal.timeout` and the caller's own
 * deadlines fired seconds late. A turn is also due after a few MiB of input.
 *
 * No wall-clock bound here (the test machine may be loaded): a 1 ms timer set at the start must
 * fire before BOUND bytes have been taken from the source, which the source counts. AES-GCM runs
 * well under 20 GB/s, so BOUND is more than a few milliseconds of work on any machine.
 */
import { describe, expect, it } from 'vitest';
import { openStream, rewrapStream, sealStream } from '../src/index.js';
import { aes, aesOther } from './helpers/keys.js';

const MiB = 1024 * 1024;
const CHUNK = Buffer.alloc(MiB, 7);
/** The timer must have fired before this much input was taken. */
const BOUND = 48 * MiB;
/** Where an endless source gives up (the old code reached it): well past BOUND, and cheap. */
const CAP = 4 * BOUND;

/** Counts the bytes taken from a source and when a timer set now fired. */
function watch(): { sent: number; firedAt: number | undefined } {
  const w: { sent: number; firedAt: number | undefined } = { sent: 0, firedAt: undefined };
  setTimeout(() => {
    w.firedAt = w.sent;
  }, 1);
  return w;
}

/** Counts the bytes taken from a source, with no timer. */
function unwatched(): { sent: number; firedAt: number | undefined } {
  return { sent: 0, firedAt: undefined };
}

/** The same 1 MiB chunk until the timer fired or CAP bytes were sent. */
async function* endless(w: { sent: number; firedAt: number | undefined }): AsyncGenerator<Uint8Array> {
  while (w.firedAt === undefined && w.sent < CAP) {
    w.sent += CHUNK.length;
    yield CHUNK;
  }
}

/** `message` in 1 MiB chunks; stops early once the timer fired. */
async function* chunksOf(
  message: Uint8Array,
  w: { sent: number; firedAt: number | undefined },
): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < message.length && w.firedAt === undefined; at += MiB) {
    const c = message.subarray(at, at + MiB);
    w.sent += c.length;
    yield c;
  }
}

async function drain(it: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const p of it) n += p.length;
  return n;
}

/** A sealed message of 2 * BOUND bytes of plaintext, as the pieces the seal yielded. */
async function bigMessage(): Promise<Buffer> {
  let sent = 0;
  async function* plaintext(): AsyncGenerator<Uint8Array> {
    for (; sent < 2 * BOUND; sent += CHUNK.length) yield CHUNK;
  }
  const parts: Uint8Array[] = [];
  for await (const p of sealStream(plaintext(), { recipients: [aes] })) parts.push(p);
  return Buffer.concat(parts);
}

describe('a source of large chunks all at hand lets timers run every few MiB', () => {
  for (const concurrency of [1, 2]) {
    it(`sealStream at concurrency ${concurrency}: a timer set at the start fires early`, async () => {
      const w = watch();
      await drain(sealStream(endless(w), { recipients: [aes], concurrency }));
      expect(w.firedAt).toBeDefined();
      expect(w.firedAt).toBeLessThan(BOUND);
    });

    it(`sealStream at concurrency ${concurrency}: AbortSignal.timeout ends an endless source`, async () => {
      // No timer of our own: the source runs until the abort (or CAP).
      const w = unwatched();
      const run = drain(
        sealStream(endless(w), { recipients: [aes], concurrency, signal: AbortSignal.timeout(5) }),
      );
      await expect(run).rejects.toMatchObject({ code: 'Aborted' });
      expect(w.sent).toBeLessThan(BOUND);
    });
  }

  it('openStream and rewrapStream: a timer set at the start fires early', async () => {
    const message = await bigMessage();
    let w = watch();
    // Stopped early, the message is truncated: that failure is expected, the count is the test.
    await drain(openStream(chunksOf(message, w), { trust: [aes] })).catch(() => undefined);
    expect(w.firedAt).toBeDefined();
    expect(w.firedAt).toBeLessThan(BOUND);

    w = watch();
    await drain(rewrapStream(chunksOf(message, w), { trust: [aes], add: [aesOther] })).catch(() => undefined);
    expect(w.firedAt).toBeDefined();
    expect(w.firedAt).toBeLessThan(BOUND);
  });

  it('openStream: AbortSignal.timeout ends the open of a long message in time', async () => {
    const message = await bigMessage();
    const w = unwatched();
    const run = drain(openStream(chunksOf(message, w), { trust: [aes], signal: AbortSignal.timeout(5) }));
    await expect(run).rejects.toMatchObject({ code: 'Aborted' });
    expect(w.sent).toBeLessThan(BOUND);
  });
});

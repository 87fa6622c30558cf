/**
 * A source whose `return()` fails or never settles. A stream that fails asks its source to end;
 * what that `return()` does must not replace the stream's own error (as a `for await` loop keeps
 * its body's error over its iterator's): a tampered message read from such a source failed as
 * the source's TypeError instead of Integrity. And a `return()` that never settles must not
 * hold the stream past the caller's abort.
 */
import { randomBytes } from 'node:crypto';
import { KeyportError } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { openStream, rewrapStream, sealEnvelope, sealStream } from '../src/index.js';
import { aes, aesOther, flip } from './helpers/keys.js';

type Ending = 'throws' | 'rejects' | 'never';

/** `bytes` in 1000-byte chunks; `return()` throws, rejects, or never settles. */
function source(bytes: Uint8Array, ending: Ending): AsyncIterableIterator<Uint8Array> & { returned: number } {
  let at = 0;
  const it = {
    returned: 0,
    [Symbol.asyncIterator]() {
      return it;
    },
    async next(): Promise<IteratorResult<Uint8Array>> {
      if (at >= bytes.length) return { done: true, value: undefined };
      at += 1000;
      return { done: false, value: bytes.subarray(at - 1000, at) };
    },
    return(): Promise<IteratorResult<Uint8Array>> {
      it.returned++;
      if (ending === 'throws') throw new TypeError('the source failed to close');
      if (ending === 'rejects') return Promise.reject(new TypeError('the source failed to close'));
      return new Promise(() => undefined);
    },
  };
  return it;
}

/** The error code the stream fails with, or 'ok', or 'held' when it has not settled within 3 s. */
async function outcome(stream: AsyncIterable<Uint8Array>): Promise<string> {
  const run = (async () => {
    for await (const _ of stream);
    return 'ok';
  })().catch((e: unknown) => (e instanceof KeyportError ? e.code : `not a KeyportError: ${String(e)}`));
  let timer: NodeJS.Timeout | undefined;
  const held = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve('held'), 3000);
  });
  try {
    return await Promise.race([run, held]);
  } finally {
    clearTimeout(timer);
  }
}

const F = 4096;
const pt = randomBytes(6 * F);

describe('a source whose return() fails', () => {
  it("does not replace the stream's own typed error (open, rewrap, seal with plaintextLength)", async () => {
    const msg = await sealEnvelope(pt, { recipients: [aes], frameLength: F });
    const tampered = Buffer.from(msg);
    flip(tampered, msg.length - 3000);
    const badHeader = Buffer.from(msg);
    flip(badHeader, 60);
    for (const ending of ['throws', 'rejects'] as const) {
      for (const withSignal of [{}, { signal: new AbortController().signal }]) {
        for (const concurrency of [1, 2]) {
          const s = source(tampered, ending);
          expect(await outcome(openStream(s, { trust: [aes], concurrency, ...withSignal }))).toBe(
            'Integrity',
          );
          expect(s.returned).toBe(1);
        }
        const r = source(badHeader, ending);
        expect(await outcome(rewrapStream(r, { trust: [aes], add: [aesOther], ...withSignal }))).toBe(
          'InvalidCiphertext',
        );
        expect(r.returned).toBe(1);
        const short = source(pt, ending);
        expect(
          await outcome(sealStream(short, { recipients: [aes], plaintextLength: 10, ...withSignal })),
        ).toBe('InvalidArgument');
        expect(short.returned).toBe(1);
      }
    }
  });

  it("that never settles holds the failed stream only until the caller's abort, which keeps the stream's error", async () => {
    const msg = await sealEnvelope(pt, { recipients: [aes], frameLength: F });
    const tampered = Buffer.from(msg);
    flip(tampered, msg.length - 3000);
    const badHeader = Buffer.from(msg);
    flip(badHeader, 60);
    const streams = [
      (signal: AbortSignal) => openStream(source(tampered, 'never'), { trust: [aes], signal }),
      (signal: AbortSignal) =>
        openStream(source(tampered, 'never'), { trust: [aes], signal, concurrency: 2 }),
      (signal: AbortSignal) =>
        rewrapStream(source(badHeader, 'never'), { trust: [aes], add: [aesOther], signal }),
      (signal: AbortSignal) =>
        sealStream(source(pt, 'never'), { recipients: [aes], plaintextLength: 10, signal }),
    ];
    const expected = ['Integrity', 'Integrity', 'InvalidCiphertext', 'InvalidArgument'];
    const got: string[] = [];
    for (const make of streams) {
      const ac = new AbortController();
      // Fired once the stream has failed and is waiting for the source to end.
      const timer = setTimeout(() => ac.abort(), 50);
      got.push(await outcome(make(ac.signal)));
      clearTimeout(timer);
    }
    expect(got).toEqual(expected);
  });
});

/**
 * A source that yields empty chunks forever (a hostile or buggy async iterable, an object-mode
 * Readable). Each empty chunk is skipped on the microtask queue, so without a turn of the event
 * loop now and then no timer ever fires: not `AbortSignal.timeout`, not a caller's own deadline,
 * not vitest's test timeout, and the process spins at 100% CPU for ever.
 *
 * The sources below watch the wall clock themselves (a timer cannot fire while they starve the
 * loop) and fail with "starved" after STARVED_MS: on a loop that never yields, the test fails
 * with that error instead of hanging the run.
 */
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { parseHeader } from '../src/header.js';
import {
  createOpenStream,
  createSealStream,
  openStream,
  rewrapStream,
  sealEnvelope,
  sealStream,
} from '../src/index.js';
import { resolveLimits } from '../src/limits.js';
import { aes, aesOther, collect } from './helpers/keys.js';

const STARVED_MS = 5_000;
const ABORT_MS = 200;
const EMPTY = new Uint8Array(0);

class Starved extends Error {
  constructor() {
    super(`the event loop was starved: no timer fired for ${STARVED_MS} ms`);
  }
}

/** `prefix` (if any), then empty chunks until `stop()` is true; throws Starved after STARVED_MS. */
async function* endlessEmpty(prefix?: Uint8Array, stop = () => false): AsyncGenerator<Uint8Array> {
  const until = performance.now() + STARVED_MS;
  if (prefix !== undefined) yield prefix;
  for (let i = 1; !stop(); i++) {
    if (i % 1024 === 0 && performance.now() > until) throw new Starved();
    yield i % 2 === 0 ? EMPTY : Buffer.alloc(0);
  }
}

/** The same, as a synchronous iterable. */
function* endlessEmptySync(): Generator<Uint8Array> {
  const until = performance.now() + STARVED_MS;
  for (let i = 1; ; i++) {
    if (i % 1024 === 0 && performance.now() > until) throw new Starved();
    yield EMPTY;
  }
}

async function drain(it: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const p of it) n += p.length;
  return n;
}

/** Rejects with the caller's abort (code Aborted) well before the source would report starvation. */
async function expectAbortedInTime(run: () => Promise<unknown>): Promise<void> {
  const started = performance.now();
  await expect(run()).rejects.toMatchObject({ code: 'Aborted' });
  expect(performance.now() - started).toBeLessThan(STARVED_MS);
}

const pt = randomBytes(3000);
const message = await sealEnvelope(pt, { recipients: [aes], frameLength: 1024 });
const header = parseHeader(message, resolveLimits());
if (header === undefined) throw new Error('no header');
/** The whole header and part of the first frame: the body is being read when the empties start. */
const intoBody = message.subarray(0, header.length + 40);

describe('an endless run of empty chunks ends at the caller’s AbortSignal.timeout', () => {
  it('openStream, while reading the header', async () => {
    await expectAbortedInTime(() =>
      drain(openStream(endlessEmpty(), { trust: [aes], signal: AbortSignal.timeout(ABORT_MS) })),
    );
  });

  it('openStream, while reading a frame', async () => {
    await expectAbortedInTime(() =>
      drain(openStream(endlessEmpty(intoBody), { trust: [aes], signal: AbortSignal.timeout(ABORT_MS) })),
    );
  });

  it('openStream, from a synchronous iterable', async () => {
    await expectAbortedInTime(() =>
      drain(openStream(endlessEmptySync(), { trust: [aes], signal: AbortSignal.timeout(ABORT_MS) })),
    );
  });

  it('rewrapStream, while copying the body', async () => {
    await expectAbortedInTime(() =>
      drain(
        rewrapStream(endlessEmpty(intoBody), {
          trust: [aes],
          add: [aesOther],
          signal: AbortSignal.timeout(ABORT_MS),
        }),
      ),
    );
  });

  it('sealStream, one frame at a time and with frames in flight on worker threads', async () => {
    for (const concurrency of [1, 2]) {
      await expectAbortedInTime(() =>
        drain(
          sealStream(endlessEmpty(), {
            recipients: [aes],
            frameLength: 64 * 1024,
            concurrency,
            signal: AbortSignal.timeout(ABORT_MS),
          }),
        ),
      );
    }
  });

  it('createOpenStream and createSealStream fed by an object-mode Readable', async () => {
    const sink = () =>
      new Writable({
        write(_chunk, _encoding, done) {
          done();
        },
      });
    await expectAbortedInTime(() =>
      pipeline(
        Readable.from(endlessEmpty(intoBody)),
        createOpenStream({ trust: [aes], signal: AbortSignal.timeout(ABORT_MS) }),
        sink(),
      ),
    );
    await expectAbortedInTime(() =>
      pipeline(
        Readable.from(endlessEmpty()),
        createSealStream({ recipients: [aes], signal: AbortSignal.timeout(ABORT_MS) }),
        sink(),
      ),
    );
  });
});

describe('without a signal, the caller’s own timers still fire', () => {
  it('a source that stops once a timer has fired ends, and the message still opens or seals', async () => {
    let fired = false;
    setTimeout(() => {
      fired = true;
    }, 50);
    // The message is all there, then empties until the timer fires: the open completes.
    const opened = await drain(
      openStream(
        endlessEmpty(message, () => fired),
        { trust: [aes] },
      ),
    );
    expect(opened).toBe(pt.length);

    fired = false;
    setTimeout(() => {
      fired = true;
    }, 50);
    const sealed = await collect(
      sealStream(
        endlessEmpty(pt, () => fired),
        { recipients: [aes] },
      ),
    );
    expect(sealed.length).toBeGreaterThan(pt.length);
  });
});

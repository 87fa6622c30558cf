/**
 * Streaming seal, and Node stream adapters for seal and open. Seal holds at most one frame
 * of plaintext plus one incoming chunk; open holds one frame of plaintext until its tag verifies.
 */
import { Duplex } from 'node:stream';
import { KeyportError } from '@keyport/core';
import { nextTurn, SmallChunkGatherer, TurnCounter } from './chunk-queue.js';
import { openStream, type StreamOpenOptions } from './open.js';
import {
  checkAborted,
  checkSource,
  nextOrAbort,
  readOptions,
  SEAL_OPTION_NAMES,
  untilAborted,
} from './options.js';
import { streamConcurrency, streamWindow } from './parallel.js';
import { footer, prepareSeal, type SealOptions, type SealSession } from './seal.js';
import { streamFrameRunner } from './stream-workers.js';

/**
 * Takes `n` bytes off the front of `pending` as views (no copy). One splice, not a `shift` per
 * chunk: shifting a frame's worth of 1-byte chunks off a million-entry list is quadratic (a 1 MiB
 * frame sealed from 1-byte chunks took minutes).
 */
function takeFront(pending: Uint8Array[], n: number): Uint8Array[] {
  let whole = 0;
  for (let left = n; whole < pending.length; whole++) {
    const size = (pending[whole] as Uint8Array).length;
    if (size > left) break;
    left -= size;
  }
  const out = pending.splice(0, whole);
  let taken = 0;
  for (const p of out) taken += p.length;
  if (taken < n) {
    const first = pending[0] as Uint8Array;
    out.push(first.subarray(0, n - taken));
    pending[0] = first.subarray(n - taken);
  }
  return out;
}

/**
 * Cuts plaintext chunks into frames of `f` bytes, kept as views of the chunks (never joined). A
 * frame is complete only once more input is known, so the last one can be sealed as final.
 */
function frameCutter(f: number): {
  push(chunk: unknown): Generator<Uint8Array[]>;
  rest(): { parts: Uint8Array[]; length: number };
} {
  const pending: Uint8Array[] = [];
  let pendingLength = 0;
  // Small chunks are copied into blocks: kept as they came, a frame of 1-byte chunks was a view
  // object (~100 bytes of heap) and a cipher call per byte, and as many pieces of output.
  const small = new SmallChunkGatherer();
  return {
    /** The regular frames `chunk` completes. */
    *push(chunk) {
      if (!(chunk instanceof Uint8Array))
        throw new KeyportError('InvalidArgument', 'plaintext chunks must be bytes');
      if (chunk.length === 0) return;
      small.append(pending, chunk);
      pendingLength += chunk.length;
      while (pendingLength > f) {
        pendingLength -= f;
        yield takeFront(pending, f);
      }
    },
    /** What is left: the final frame. */
    rest: () => ({ parts: pending, length: pendingLength }),
  };
}

/**
 * Cuts the input into frames; a frame is sealed as regular only once more input is known.
 * Input chunks are kept as they came (views, never joined) and each frame is emitted as the
 * pieces the cipher returned, so the plaintext is read once and the ciphertext never copied.
 */
export async function* sealFrames(
  session: SealSession,
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  concurrency = 1,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array, void, undefined> {
  const f = session.sealer.frameLength;
  const signer = session.signer;
  yield session.header;
  const window = streamWindow(concurrency, f);
  if (window > 0) {
    yield* sealFramesInFlight(session, source, concurrency, window, signal);
    return;
  }
  const frames = frameCutter(f);
  const turns = new TurnCounter();
  for await (const chunk of source) {
    for (const parts of frames.push(chunk)) {
      // Per frame, not only per chunk: one large chunk holds many frames, and an abort while the
      // consumer held one of them went unheard until the whole chunk was sealed.
      checkAborted(signal);
      for (const p of session.sealer.framePieces(parts, f, false)) {
        signer?.update(p);
        yield p;
      }
    }
    // Timers get a turn now and then (see TurnCounter): nothing here leaves the microtask queue,
    // neither an endless run of empty chunks nor one of large ones. After `push`, which refused
    // a chunk that is not bytes.
    if (turns.count((chunk as Uint8Array).length)) {
      await nextTurn();
      checkAborted(signal);
    }
  }
  const last = frames.rest();
  checkAborted(signal);
  for (const p of session.sealer.framePieces(last.parts, last.length, true)) {
    signer?.update(p);
    yield p;
  }
  const foot = footer(session);
  if (foot.length > 0) yield foot;
}

/**
 * Streaming seal with up to `window` frames in flight (on worker threads, or sealed here when
 * every worker is busy; see stream-workers.ts), emitted in order. Memory: `window` frames of
 * plaintext and ciphertext.
 */
async function* sealFramesInFlight(
  session: SealSession,
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  concurrency: number,
  window: number,
  signal: AbortSignal | undefined,
): AsyncGenerator<Uint8Array, void, undefined> {
  const { sealer, signer } = session;
  const f = sealer.frameLength;
  const runner = streamFrameRunner(sealer.key, concurrency, f);
  const inFlight: Array<{ prefix: Buffer; sealed: Promise<Uint8Array[]> }> = [];
  const start = (parts: Uint8Array[], length: number, final: boolean): void => {
    const { prefix, iv, aad } = sealer.nextFrameHeader(length, final);
    const sealed = runner.seal(iv, aad, parts, length);
    sealed.catch(() => undefined);
    inFlight.push({ prefix, sealed });
  };
  async function* emit(until: number): AsyncGenerator<Uint8Array> {
    while (inFlight.length > until) {
      const { prefix, sealed } = inFlight.shift() as (typeof inFlight)[number];
      const pieces = await sealed;
      checkAborted(signal);
      signer?.update(prefix);
      yield prefix;
      for (const p of pieces) {
        signer?.update(p);
        yield p;
      }
    }
  }
  try {
    const frames = frameCutter(f);
    const turns = new TurnCounter();
    for await (const chunk of source) {
      for (const parts of frames.push(chunk)) {
        start(parts, f, false);
        yield* emit(window - 1);
      }
      // As in sealFrames: empty chunks start no frame, so no worker's answer ends the spin, and
      // frames sealed here (every worker busy) leave the microtask queue no more than there.
      if (turns.count((chunk as Uint8Array).length)) {
        await nextTurn();
        checkAborted(signal);
      }
    }
    const last = frames.rest();
    start(last.parts, last.length, true);
    yield* emit(0);
  } finally {
    runner.close();
  }
  const foot = footer(session);
  if (foot.length > 0) yield foot;
}

/**
 * The source, failing with Aborted once `signal` fires: between chunks, and while waiting for
 * one (a stalled source must not outlive the caller's abort). A source left with an unanswered
 * `next()` is asked to end without waiting (an async generator answers only after that `next`).
 */
async function* abortable(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  signal: AbortSignal,
): AsyncGenerator<Uint8Array> {
  const it =
    Symbol.asyncIterator in source
      ? (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]()
      : (source as Iterable<Uint8Array>)[Symbol.iterator]();
  let finished = false;
  let abandoned = false;
  try {
    for (;;) {
      let r: IteratorResult<Uint8Array>;
      try {
        r = await nextOrAbort(it, signal);
      } catch (e) {
        abandoned = true;
        throw e;
      }
      if (r.done === true) {
        finished = true;
        return;
      }
      yield r.value;
      checkAborted(signal);
    }
  } finally {
    if (!finished) {
      // Its failure is not ours to report (nor may it replace the stream's own error), and a
      // return() that never settles is waited for only until the abort.
      let ended: Promise<unknown> = Promise.resolve();
      try {
        ended = Promise.resolve(it.return?.());
      } catch {
        // A return() that throws is ignored as one that rejects.
      }
      ended.catch(() => undefined);
      if (!abandoned) await untilAborted(ended, signal).catch(() => undefined);
    }
  }
}

const lengthDiffers = (): KeyportError =>
  new KeyportError('InvalidArgument', 'the plaintext length differs from plaintextLength');

/** Fails when the plaintext is not exactly the declared length (the cache was charged for it). */
async function* exactly(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  length: number,
): AsyncGenerator<Uint8Array> {
  let seen = 0;
  for await (const chunk of source) {
    // Checked here, before `length` is read: a null chunk was a TypeError, not InvalidArgument.
    if (!(chunk instanceof Uint8Array))
      throw new KeyportError('InvalidArgument', 'plaintext chunks must be bytes');
    seen += chunk.length;
    // Thrown in the loop, not after a `break`: a break ends the source as a normal exit, where the
    // source's failing return() would replace this error.
    if (seen > length) throw lengthDiffers();
    yield chunk;
  }
  if (seen !== length) throw lengthDiffers();
}

/** Seals chunks as they come (an async iterable or a Node Readable). */
export async function* sealStream(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  given: SealOptions,
): AsyncGenerator<Uint8Array, void, undefined> {
  const options = readOptions<SealOptions>(given, 'seal options', SEAL_OPTION_NAMES);
  checkSource(source);
  const length = options.plaintextLength;
  if (length !== undefined && !(Number.isSafeInteger(length) && length >= 0)) {
    throw new KeyportError('InvalidArgument', 'plaintextLength must be a non-negative integer');
  }
  const concurrency = streamConcurrency(options.concurrency);
  const session = await prepareSeal(options, length);
  const signal = options.signal;
  const input = signal === undefined ? source : abortable(source, signal);
  yield* sealFrames(session, length === undefined ? input : exactly(input, length), concurrency, signal);
}

/**
 * A Duplex over `run`, with a signal of its own joined to the caller's: it fires when the stream
 * is destroyed (by the caller, or by `pipeline` on an error), so a KMS call still pending then (a
 * seal's data key, an open's unwrap) is cancelled instead of holding the destroyed stream until it
 * answers. Our own
 * controller, not the one `Duplex.from` passes: Node 22 never aborts that one on destroy. Options
 * that are not an object, or a `signal` that is no AbortSignal, are passed on as given, for the
 * stream's own check.
 */
function duplexOf<O>(
  options: O,
  run: (source: AsyncIterable<Uint8Array>, options: O) => AsyncIterable<Uint8Array>,
): Duplex {
  const closed = new AbortController();
  let joined = options;
  if (typeof options === 'object' && options !== null) {
    const own = (options as { signal?: unknown }).signal;
    if (own === undefined) joined = { ...options, signal: closed.signal };
    else if (own instanceof AbortSignal)
      joined = { ...options, signal: AbortSignal.any([own, closed.signal]) };
  }
  const stream = Duplex.from((source: AsyncIterable<Uint8Array>) => run(source, joined));
  // At destroy, before Node's own teardown: 'close' comes only once the pending call settled.
  const teardown = stream._destroy.bind(stream);
  stream._destroy = (error, callback) => {
    closed.abort();
    teardown(error, callback);
  };
  return stream;
}

/** A Node Duplex: write plaintext, read the sealed message. */
export function createSealStream(options: SealOptions): Duplex {
  return duplexOf(options, sealStream);
}

/** A Node Duplex: write a sealed message, read verified plaintext. */
export function createOpenStream(options: StreamOpenOptions): Duplex {
  return duplexOf(options, openStream);
}

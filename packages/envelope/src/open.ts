/**
 * Opening: verify the header, then decrypt the body frame by frame. Each frame's plaintext is
 * released only after its tag verifies; sequence numbers must run 1, 2, ... and end with
 * exactly one final frame, so reordered, replayed, dropped or truncated frames fail. For
 * signed suites a missing or invalid verification key is refused with the header; the footer
 * signature is checked at the end: the streaming API has already
 * released the verified frames by then (as the ESDK's streaming decrypt does); the buffer
 * API returns nothing unless the signature verifies.
 */
import { createDecipheriv, type KeyObject, type Verify } from 'node:crypto';
import { type EncryptionContext, KeyportError, keyportTracingActive, withKeyportSpan } from '@keyport/core';
import {
  type AeadKey,
  bodyAad,
  FINAL_FRAME_STRING,
  FRAME_STRING,
  GCM_SLICE,
  gcmCipher,
  readOnce,
  SINGLE_BLOCK_STRING,
} from './aead.js';
import { invalidCiphertext, u32be, u64be } from './bytes.js';
import { ChunkQueue, SMALL_CHUNK } from './chunk-queue.js';
import { sharedBuffer } from './frame-pool.js';
import { SEQUENCE_END } from './frames.js';
import { CONTENT_FRAMED, type ParsedHeader } from './header.js';
import type { ResolvedLimits } from './limits.js';
import { type OpenOptions, readVerifiedHeader, type VerifiedHeader } from './open-header.js';
import {
  checkAborted,
  checkSource,
  OPEN_ENVELOPE_OPTION_NAMES,
  outputOption,
  readOptions,
  STREAM_OPEN_OPTION_NAMES,
} from './options.js';
import {
  type FrameWalk,
  openFramesParallel,
  resolveConcurrency,
  streamConcurrency,
  streamWindow,
  walkedLength,
  walkFrames,
  worthParallel,
} from './parallel.js';
import { newVerifier } from './signing.js';
import { streamFrameRunner } from './stream-workers.js';
import type { SuiteId } from './suites.js';

export type { OpenOptions } from './open-header.js';

/** What open tells about a message once its header has been verified. */
export interface MessageInfo {
  readonly suiteId: SuiteId;
  readonly messageFormat: 1 | 2;
  /** The whole context, including `aws-crypto-public-key` for signed suites. */
  readonly context: EncryptionContext;
  readonly frameLength: number;
  readonly framed: boolean;
  /** Provider ids of the message's encrypted data keys, in header order. */
  readonly providerIds: readonly string[];
}

export interface StreamOpenOptions extends OpenOptions {
  /** Called once the header is verified, before any plaintext is released. */
  readonly onHeader?: (info: MessageInfo) => void;
}

export function messageInfo(h: ParsedHeader, context: EncryptionContext): MessageInfo {
  return {
    suiteId: h.suite.id,
    messageFormat: h.suite.messageFormat,
    context,
    frameLength: h.frameLength,
    framed: h.contentType === CONTENT_FRAMED,
    providerIds: h.encryptedDataKeys.map((e) => e.providerId),
  };
}

interface BodyState {
  readonly queue: ChunkQueue;
  readonly header: ParsedHeader;
  readonly key: AeadKey;
  readonly limits: ResolvedLimits;
  readonly verifier: Verify | undefined;
  readonly signal: AbortSignal | undefined;
  /**
   * The buffer path: plaintext is written here, frame after frame, and views of it are
   * yielded. Absent when streaming: each frame gets its own buffer, handed to the consumer.
   */
  readonly into: Buffer | undefined;
  written: number;
  /**
   * Streaming: the calling thread and up to `concurrency - 1` workers, with frames in flight
   * (see `streamWindow`); 1 on the buffer path, which runs one frame at a time.
   */
  readonly concurrency: number;
  /**
   * Signed suites: the final frame's (or the non-framed body's) plaintext, held back until the
   * footer signature verifies (decrypt.md: it MUST NOT be released before). Regular frames are
   * released as they verify, as the spec's SHOULD says.
   */
  held: Uint8Array[] | undefined;
}

/**
 * Decrypts `length` bytes of content followed by a 16-byte tag as they arrive, chunk by chunk,
 * and returns the plaintext once the tag verifies (zeroed otherwise). The ciphertext is never
 * gathered: memory is one frame of plaintext plus the chunks in flight, whatever the sender's
 * chunking, and a frame of junk costs no more than a real one. On the buffer path the
 * plaintext is written into `into`; when streaming it is the pieces `update` returned (no
 * frame-sized buffer and no copy), handed to the consumer as they are.
 */
async function decryptContent(
  s: BodyState,
  iv: Uint8Array,
  aad: Uint8Array,
  length: number,
  what: string,
): Promise<Uint8Array[]> {
  const { queue, verifier, into } = s;
  const d = createDecipheriv(gcmCipher(s.key), s.key, iv, { authTagLength: 16 });
  d.setAAD(aad);
  const pieces: Buffer[] = [];
  const base = s.written;
  let done = 0;
  try {
    while (done < length) {
      checkAborted(s.signal);
      const max = Math.min(length - done, GCM_SLICE);
      // Small chunks are gathered first (the queue joins them into one block): each piece
      // decrypted here is a plaintext Buffer held until the tag, and a sender cutting a frame
      // into 1-byte chunks made one per byte (~250 MB of heap for a 1 MiB frame of junk after a
      // replayed header). Buffered bytes are taken without a promise round trip per slice.
      const least = Math.min(max, SMALL_CHUNK);
      if (queue.length < least) await queue.need(least);
      // Shared memory is decrypted from a private copy (see readOnce).
      const piece = readOnce(queue.peekBuffered(max));
      const out = d.update(piece);
      if (into === undefined) pieces.push(out);
      else into.set(out, base + done);
      verifier?.update(piece);
      queue.consume(piece.length);
      done += piece.length;
    }
    await queue.need(16);
    const tag = queue.view(16);
    d.setAuthTag(tag);
    verifier?.update(tag);
    queue.consume(16);
    try {
      d.final();
    } catch (cause) {
      throw new KeyportError('Integrity', `${what} failed authentication`, { cause });
    }
  } catch (e) {
    for (const p of pieces) p.fill(0);
    into?.fill(0, base, base + done);
    throw e;
  }
  if (into === undefined) return pieces;
  s.written += length;
  return length === 0 ? [] : [into.subarray(base, base + length)];
}

/**
 * Yields a frame's verified plaintext pieces in order (empty ones skipped). A consumer that stops
 * part-way (a `break`, a failed write) leaves the pieces it was not given zeroed, not to the GC.
 */
export function* handOut(pieces: readonly Uint8Array[]): Generator<Uint8Array, void, undefined> {
  let given = 0;
  try {
    for (; given < pieces.length; given++) {
      const p = pieces[given] as Uint8Array;
      if (p.length > 0) yield p;
    }
  } finally {
    for (let i = given + 1; i < pieces.length; i++) (pieces[i] as Uint8Array).fill(0);
  }
}

/** The next frame's prefix, checked: sequence number, final flag, IV, content length. */
async function readFramePrefix(
  s: BodyState,
  expected: number,
): Promise<{ seq: number; final: boolean; iv: Uint8Array; length: number }> {
  const { queue, header, verifier } = s;
  const f = header.frameLength;
  if (expected > s.limits.maxFrames)
    throw invalidCiphertext(`the message has more than ${s.limits.maxFrames} frames`);
  await queue.need(4);
  const first = u32be(queue.view(4), 0);
  const final = first === SEQUENCE_END;
  const prefix = final ? 24 : 16;
  await queue.need(prefix);
  // A copy: the queue's chunks are consumed (and may be reused by the source) before use.
  const head = new Uint8Array(queue.view(prefix));
  const seq = final ? u32be(head, 4) : first;
  if (seq !== expected) throw invalidCiphertext('frame out of sequence');
  const length = final ? u32be(head, 20) : f;
  if (length > f) throw invalidCiphertext('final frame is longer than the frame length');
  verifier?.update(head);
  queue.consume(prefix);
  const iv = head.subarray(prefix - (final ? 16 : 12), prefix - (final ? 4 : 0));
  return { seq, final, iv, length };
}

async function* framedBody(s: BodyState): AsyncGenerator<Uint8Array> {
  const window = streamWindow(s.concurrency, s.header.frameLength);
  if (window > 0) {
    yield* framedBodyInFlight(s, window);
    return;
  }
  for (let expected = 1; ; expected++) {
    checkAborted(s.signal);
    const { seq, final, iv, length } = await readFramePrefix(s, expected);
    const aad = bodyAad(s.header.messageId, final ? FINAL_FRAME_STRING : FRAME_STRING, seq, length);
    const plaintext = await decryptContent(s, iv, aad, length, `frame ${seq}`);
    if (final) {
      yield* handOutLast(s, plaintext);
      return;
    }
    yield* handOut(plaintext);
  }
}

/**
 * The body's last plaintext (final frame or non-framed body): held back when the suite is
 * signed, until the footer verifies (see `BodyState.held`), otherwise handed out now.
 */
function* handOutLast(s: BodyState, plaintext: Uint8Array[]): Generator<Uint8Array, void, undefined> {
  if (s.verifier !== undefined) s.held = plaintext;
  else yield* handOut(plaintext);
}

/**
 * Streaming open with up to `window` frames in flight (on worker threads, or opened here when
 * every worker is busy; see stream-workers.ts) while the next ones are read. Frames are released
 * in order, each only after its own tag verified; a structural error found while reading ahead
 * is thrown after the frames before it, as on the sequential path. Memory: `window` frames of
 * ciphertext and plaintext.
 */
async function* framedBodyInFlight(s: BodyState, window: number): AsyncGenerator<Uint8Array> {
  const { queue, header, verifier } = s;
  const runner = streamFrameRunner(s.key, s.concurrency, header.frameLength);
  const inFlight: Promise<Uint8Array[]>[] = [];
  /** Reads and checks the next frame and starts its decryption; false after the final frame. */
  const readNext = async (expected: number): Promise<boolean> => {
    checkAborted(s.signal);
    const { seq, final, iv, length } = await readFramePrefix(s, expected);
    await queue.need(length + 16);
    const aad = bodyAad(header.messageId, final ? FINAL_FRAME_STRING : FRAME_STRING, seq, length);
    const frame = queue.views(length + 16);
    for (const part of frame) verifier?.update(part);
    const opened = runner.open(iv, aad, frame, length, `frame ${seq}`);
    // Settled-but-unawaited rejections must not surface as unhandled while earlier frames drain.
    opened.catch(() => undefined);
    inFlight.push(opened);
    queue.consume(length + 16);
    return !final;
  };
  /**
   * The next frame's plaintext, in order; a failed tag throws here, before any later frame.
   * `last`: the final frame, held back when the suite is signed (see `BodyState.held`).
   */
  async function* release(last: boolean): AsyncGenerator<Uint8Array> {
    const plaintext = await (inFlight.shift() as Promise<Uint8Array[]>);
    if (s.signal?.aborted === true) {
      // An abort while this frame was at a worker (or while the consumer held the previous one):
      // no frame is released after it, as on the sequential path.
      for (const p of plaintext) p.fill(0);
      checkAborted(s.signal);
    }
    yield* last ? handOutLast(s, plaintext) : handOut(plaintext);
  }
  try {
    let more = true;
    for (let expected = 1; more || inFlight.length > 0; expected++) {
      if (more) {
        try {
          more = await readNext(expected);
        } catch (readError) {
          // Release the frames read before the broken one, in order, each only if it verified
          // (an earlier frame's Integrity error wins), then report the structural error.
          while (inFlight.length > 0) yield* release(false);
          throw readError;
        }
      }
      while (inFlight.length >= window || (!more && inFlight.length > 0)) {
        yield* release(!more && inFlight.length === 1);
      }
    }
  } finally {
    // A consumer that stopped early: frames still in flight are zeroed when they come back.
    for (const opened of inFlight.splice(0)) {
      opened.then(
        (pieces) => {
          for (const p of pieces) p.fill(0);
        },
        () => undefined,
      );
    }
    runner.close();
  }
}

async function* nonFramedBody(s: BodyState): AsyncGenerator<Uint8Array> {
  const { queue, header, verifier } = s;
  await queue.need(20);
  const head = new Uint8Array(queue.view(20));
  const length = u64be(head, 12);
  if (length > s.limits.maxNonFramedBytes) {
    throw invalidCiphertext(`non-framed body is larger than ${s.limits.maxNonFramedBytes} bytes`);
  }
  verifier?.update(head);
  queue.consume(20);
  const aad = bodyAad(header.messageId, SINGLE_BLOCK_STRING, 1, length);
  const plaintext = await decryptContent(s, head.subarray(0, 12), aad, length, 'the body');
  yield* handOutLast(s, plaintext);
}

async function verifyFooter(queue: ChunkQueue, key: KeyObject, verifier: Verify): Promise<void> {
  await queue.need(2);
  const lenBytes = queue.view(2);
  const sigLength = (lenBytes[0] as number) * 256 + (lenBytes[1] as number);
  await queue.need(2 + sigLength);
  const sig = queue.view(2 + sigLength).subarray(2);
  let ok = false;
  try {
    ok = verifier.verify({ key, dsaEncoding: 'der' }, sig);
  } catch {
    ok = false;
  }
  queue.consume(2 + sigLength);
  if (!ok) throw invalidCiphertext('the message signature does not verify');
}

/**
 * Everything after the verified header: the body (sequential, or `window` frames in flight
 * when streaming), the footer signature, and the check that nothing follows.
 */
async function* openBody(
  queue: ChunkQueue,
  v: VerifiedHeader,
  options: { readonly signal?: AbortSignal | undefined; readonly onHeader?: StreamOpenOptions['onHeader'] },
  into: Buffer | undefined,
  concurrency: number,
): AsyncGenerator<Uint8Array, void, undefined> {
  const verifier = v.header.suite.curve === undefined ? undefined : newVerifier(v.header.suite.curve);
  verifier?.update(v.bytes);
  queue.consume(v.header.length);
  options.onHeader?.(messageInfo(v.header, v.context));
  const state: BodyState = {
    queue,
    header: v.header,
    key: v.key,
    limits: v.limits,
    verifier,
    signal: options.signal,
    into,
    written: 0,
    concurrency,
    held: undefined,
  };
  yield* v.header.contentType === CONTENT_FRAMED ? framedBody(state) : nonFramedBody(state);
  try {
    if (verifier !== undefined) await verifyFooter(queue, v.verificationKey as KeyObject, verifier);
    if (!(await queue.atEnd())) throw invalidCiphertext('trailing bytes after the end of the message');
  } catch (e) {
    for (const p of state.held ?? []) p.fill(0);
    throw e;
  }
  if (state.held !== undefined) yield* handOut(state.held);
}

/** The body of `openStream`. */
async function* openChunks(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  given: StreamOpenOptions,
): AsyncGenerator<Uint8Array, void, undefined> {
  const options = readOptions<StreamOpenOptions>(given, 'open options', STREAM_OPEN_OPTION_NAMES);
  checkSource(source);
  const queue = new ChunkQueue(source, options.signal);
  let failed = false;
  try {
    const concurrency = streamConcurrency(options.concurrency);
    const v = await readVerifiedHeader(queue, options);
    yield* openBody(queue, v, options, undefined, concurrency);
  } catch (e) {
    failed = true;
    throw e;
  } finally {
    await queue.close(failed);
  }
}

/** Opens a message arriving as chunks; yields verified plaintext frame by frame. */
export function openStream(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: StreamOpenOptions,
): AsyncGenerator<Uint8Array, void, undefined> {
  return openChunks(source, options);
}

export interface OpenResult extends MessageInfo {
  readonly plaintext: Uint8Array;
}

/** `openEnvelope`'s options: the stream's, and where to write the plaintext. */
export interface OpenEnvelopeOptions extends OpenOptions {
  /**
   * Memory to write the plaintext into, reused across calls: when the plaintext fits, the
   * result's `plaintext` is a view of `output`'s first bytes; otherwise it is new memory, as
   * without `output` (check `plaintext.buffer === output.buffer`). Reused memory spares a large
   * result's page faults (see `SealEnvelopeOptions.output`). As always, plaintext is returned
   * only when every tag (and the signature) verifies: on failure the bytes of `output` the call
   * may have written are zeroed. Over a SharedArrayBuffer, messages large enough for the frame
   * pool are opened by the worker threads in place; any other `output` is written on the calling
   * thread. It must not overlap the message. The result is valid until the caller writes
   * `output` again.
   */
  readonly output?: Uint8Array;
}

/**
 * The buffer path with the walked frames decrypted in parallel (see parallel.ts) into `into`
 * (shared memory the plaintext's length) or new shared memory; undefined when the frame pool
 * cannot take the job.
 */
async function openFramedInParallel(
  message: Uint8Array,
  v: VerifiedHeader,
  walk: FrameWalk,
  concurrency: number,
  into: Buffer | undefined,
): Promise<OpenResult | undefined> {
  const h = v.header;
  const out = into ?? sharedBuffer(message.length);
  try {
    const body = openFramesParallel(v.key, h.messageId, h.frameLength, message, walk, out, concurrency);
    if (body === undefined) return undefined;
    const { end, length } = body;
    const rest = new ChunkQueue([message.subarray(end)]);
    if (h.suite.curve !== undefined) {
      const verifier = newVerifier(h.suite.curve);
      verifier.update(v.bytes);
      verifier.update(message.subarray(h.length, end));
      await verifyFooter(rest, v.verificationKey as KeyObject, verifier);
    }
    if (!(await rest.atEnd())) throw invalidCiphertext('trailing bytes after the end of the message');
    return { ...messageInfo(h, v.context), plaintext: out.subarray(0, length) };
  } catch (e) {
    out.fill(0);
    throw e;
  }
}

/** Opens a whole message; returns nothing unless every tag (and the signature) verifies. */
export async function openEnvelope(message: Uint8Array, given: OpenEnvelopeOptions): Promise<OpenResult> {
  if (!(message instanceof Uint8Array)) throw invalidCiphertext('the message must be a Uint8Array');
  const options = readOptions<OpenEnvelopeOptions>(given, 'open options', OPEN_ENVELOPE_OPTION_NAMES);
  const output = outputOption(options.output, message, 'message');
  if (!keyportTracingActive()) return openWhole(message, options, output);
  return withKeyportSpan('keyport envelope.open', { 'keyport.envelope.bytes': message.length }, () =>
    openWhole(message, options, output),
  );
}

/** A non-framed body's declared plaintext length, when the message holds that much. */
function nonFramedLength(message: Uint8Array, at: number, limits: ResolvedLimits): number | undefined {
  if (at + 20 > message.length) return undefined;
  const length = u64be(message, at + 12);
  return length <= limits.maxNonFramedBytes && at + 20 + length + 16 <= message.length ? length : undefined;
}

async function openWhole(
  message: Uint8Array,
  options: OpenOptions,
  output: Uint8Array | undefined,
): Promise<OpenResult> {
  const concurrency = resolveConcurrency(options.concurrency);
  const queue = new ChunkQueue([message]);
  const v = await readVerifiedHeader(queue, options);
  const h = v.header;
  const framed = h.contentType === CONTENT_FRAMED;
  // Decided once the header is known, so the data key is fetched once whichever path runs.
  const parallel = framed && worthParallel(concurrency, message.length - h.length, h.frameLength);
  // The frames are walked first only when something needs their structure (a small message
  // without `output` is not walked twice).
  const walk =
    framed && (parallel || output !== undefined)
      ? walkFrames(message, h.length, h.frameLength, v.limits.maxFrames)
      : undefined;
  let into: Buffer | undefined;
  if (output !== undefined) {
    const length =
      walk === undefined ? nonFramedLength(message, h.length, v.limits) : walkedLength(walk, h.frameLength);
    if (length !== undefined && output.length >= length)
      into = Buffer.from(output.buffer, output.byteOffset, length);
  }
  if (parallel && walk !== undefined && (into === undefined || into.buffer instanceof SharedArrayBuffer)) {
    const opened = await openFramedInParallel(message, v, walk, concurrency, into);
    if (opened !== undefined) return opened;
  }
  // The plaintext is never longer than the message: one allocation (or the caller's output),
  // each frame decrypted in place (no per-frame buffer, no final concat); zeroed if anything
  // fails later.
  const out = into ?? Buffer.allocUnsafeSlow(message.length);
  let total = 0;
  try {
    for await (const p of openBody(queue, v, { signal: options.signal }, out, 1)) total += p.length;
  } catch (e) {
    out.fill(0);
    throw e;
  }
  return { ...messageInfo(h, v.context), plaintext: out.subarray(0, total) };
}

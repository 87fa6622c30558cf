/**
 * When and how frames run in parallel. Whole buffers go to the frame pool (frame-pool.ts: the
 * main thread and worker threads over shared memory); streams given a `concurrency` keep frames
 * in flight on stream workers (stream-workers.ts: one message per frame, buffers transferred).
 *
 * Small messages never go parallel: below `PARALLEL_MIN_BYTES` or `PARALLEL_MIN_FRAMES` the
 * synchronous path is faster than any hand-off.
 */

import { KeyportError } from '@keyport/core';
import {
  type AeadKey,
  bodyAad,
  FINAL_FRAME_STRING,
  FRAME_STRING,
  openInto,
  sealInto,
  sequenceIv,
} from './aead.js';
import { invalidCiphertext } from './bytes.js';
import { CORES, copyToSlot, runFrameJob } from './frame-pool.js';
import { SEQUENCE_END, writeFramePrefix } from './frames.js';

export const PARALLEL_MIN_BYTES = 4 * 1024 * 1024;
export const PARALLEL_MIN_FRAMES = 4;
/** Frames in flight per thread that can run them (keeps the workers fed between replies). */
const IN_FLIGHT_PER_WORKER = 2;
const MAX_CONCURRENCY = 64;

/** Default concurrency: the cores Node may use, capped at 8. */
export const DEFAULT_CONCURRENCY = Math.max(1, Math.min(8, CORES));

export function resolveConcurrency(value: unknown): number {
  if (value === undefined) return DEFAULT_CONCURRENCY;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > MAX_CONCURRENCY) {
    throw new KeyportError('InvalidArgument', `concurrency must be an integer from 1 to ${MAX_CONCURRENCY}`);
  }
  return value;
}

/** Whether a whole buffer goes to the frame pool (which never runs more threads than cores). */
export function worthParallel(concurrency: number, bytes: number, frameLength: number): boolean {
  return (
    bytes >= PARALLEL_MIN_BYTES &&
    bytes / frameLength >= PARALLEL_MIN_FRAMES &&
    Math.min(concurrency, CORES) > 1
  );
}

/** The derived key's bytes for worker threads (a copy; the caller zeroes it). */
function keyBytes(key: AeadKey): Uint8Array {
  return key instanceof Uint8Array ? Uint8Array.from(key) : key.export();
}

/**
 * Seals `plaintext` as frames 1..n into `out` (backed by a SharedArrayBuffer) starting at `at`:
 * the same bytes as the synchronous path. Returns the offset after the body, or undefined when
 * the frame pool could not take the job (nothing usable was written; run sequentially).
 */
export function sealFramesParallel(
  key: AeadKey,
  messageId: Uint8Array,
  frameLength: number,
  plaintext: Uint8Array,
  out: Buffer,
  at: number,
  concurrency: number,
): number | undefined {
  const count = Math.max(1, Math.ceil(plaintext.length / frameLength));
  const regular = 4 + 12 + frameLength + 16;
  const lastLength = plaintext.length - (count - 1) * frameLength;
  // Every frame's prefix first (a few bytes each); the threads then fill content and tags.
  for (let i = 0; i < count; i++) {
    const final = i === count - 1;
    writeFramePrefix(out, at + i * regular, i + 1, final, final ? lastLength : frameLength);
  }
  const content = (i: number) =>
    plaintext.subarray(i * frameLength, i === count - 1 ? plaintext.length : (i + 1) * frameLength);
  const raw = keyBytes(key);
  try {
    const result = runFrameJob(
      {
        seal: true,
        key: raw,
        messageId,
        count,
        frameLength,
        lastLength,
        lastFinal: true,
        outBase: at + 16,
        outStride: regular,
        lastShift: 8,
        out,
        inputShift: plaintext.byteOffset % 8,
        sharedInput:
          plaintext.buffer instanceof SharedArrayBuffer
            ? { buffer: plaintext.buffer, base: plaintext.byteOffset, stride: frameLength, lastShift: 0 }
            : undefined,
        copyFrame: (i, slot) => copyToSlot(content(i), slot, plaintext.byteOffset % 8),
        runFrame: (i) => {
          const seq = i + 1;
          const final = i === count - 1;
          const data = content(i);
          const aad = bodyAad(messageId, final ? FINAL_FRAME_STRING : FRAME_STRING, seq, data.length);
          sealInto(key, sequenceIv(seq), aad, data, out, at + i * regular + (final ? 24 : 16));
          return true;
        },
      },
      concurrency - 1,
    );
    if (result === undefined) return undefined;
  } finally {
    raw.fill(0);
  }
  return at + (count - 1) * regular + 4 + 4 + 12 + 4 + lastLength + 16;
}

/**
 * The frame structure of a whole message's framed body, read in order with the streaming path's
 * checks: `count` frames up to the first break, and the break's error (undefined when the body
 * ends with its final frame at `end`). Every frame but the last is a regular one (prefix 16,
 * content, tag 16) at a fixed stride, so the walk keeps no per-frame record: a hostile message
 * of a million 1-byte frames costs no memory here.
 */
export interface FrameWalk {
  /** Where the body starts in the message. */
  readonly at: number;
  readonly count: number;
  /** The last frame walked: its content length and whether it is the final frame. */
  readonly lastLength: number;
  readonly lastFinal: boolean;
  readonly structural: KeyportError | undefined;
  readonly end: number;
}

export function walkFrames(
  message: Uint8Array,
  at: number,
  frameLength: number,
  maxFrames: number,
): FrameWalk {
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  let structural: KeyportError | undefined;
  let p = at;
  let count = 0;
  let lastLength = 0;
  let lastFinal = false;
  for (let expected = 1; ; expected++) {
    if (expected > maxFrames) {
      structural = invalidCiphertext(`the message has more than ${maxFrames} frames`);
      break;
    }
    if (p + 4 > message.length) {
      structural = invalidCiphertext('the message is truncated');
      break;
    }
    const first = view.getUint32(p);
    const final = first === SEQUENCE_END;
    const prefix = final ? 24 : 16;
    if (p + prefix > message.length) {
      structural = invalidCiphertext('the message is truncated');
      break;
    }
    const seq = final ? view.getUint32(p + 4) : first;
    if (seq !== expected) {
      structural = invalidCiphertext('frame out of sequence');
      break;
    }
    const length = final ? view.getUint32(p + 20) : frameLength;
    if (length > frameLength) {
      structural = invalidCiphertext('final frame is longer than the frame length');
      break;
    }
    if (p + prefix + length + 16 > message.length) {
      structural = invalidCiphertext('the message is truncated');
      break;
    }
    count = expected;
    lastLength = length;
    lastFinal = final;
    p += prefix + length + 16;
    if (final) break;
  }
  return { at, count, lastLength, lastFinal, structural, end: p };
}

/** The plaintext length of a walked body: exact when its structure is whole, else undefined. */
export function walkedLength(walk: FrameWalk, frameLength: number): number | undefined {
  if (walk.structural !== undefined || walk.count === 0) return undefined;
  return (walk.count - 1) * frameLength + walk.lastLength;
}

/**
 * Opens the walked framed body of a whole message in parallel into `out` (backed by a
 * SharedArrayBuffer, at least the plaintext long). Every frame is decrypted, and `out` is zeroed
 * unless every tag verified. If the structure broke at frame k, frames before k are still
 * checked first, so the error is the one the sequential path would report. Returns the body's
 * end offset and the plaintext length, or undefined when the frame pool could not take the job
 * (run sequentially).
 */
export function openFramesParallel(
  key: AeadKey,
  messageId: Uint8Array,
  frameLength: number,
  message: Uint8Array,
  walk: FrameWalk,
  out: Buffer,
  concurrency: number,
): { end: number; length: number } | undefined {
  const { at, count, lastLength, lastFinal, structural, end } = walk;
  const stride = 16 + frameLength + 16;
  /** Frame i (0-based): its prefix at a fixed stride; a final frame's content 8 bytes further. */
  const spot = (i: number) => {
    const final = i === count - 1 && lastFinal;
    const content = at + i * stride + (final ? 24 : 16);
    return {
      final,
      iv: content - (final ? 16 : 12),
      content,
      length: i === count - 1 ? lastLength : frameLength,
    };
  };
  if (count > 0) {
    // Frame contents sit at one alignment when the frame length is a multiple of 8.
    const inputShift = (message.byteOffset + spot(0).content) % 8;
    const raw = keyBytes(key);
    let result: ReturnType<typeof runFrameJob>;
    try {
      result = runFrameJob(
        {
          seal: false,
          key: raw,
          messageId,
          count,
          frameLength,
          lastLength,
          lastFinal,
          outBase: 0,
          outStride: frameLength,
          lastShift: 0,
          out,
          inputShift,
          sharedInput:
            message.buffer instanceof SharedArrayBuffer
              ? {
                  buffer: message.buffer,
                  base: message.byteOffset + at + 16,
                  stride,
                  lastShift: lastFinal ? 8 : 0,
                }
              : undefined,
          copyFrame: (i, slot) => {
            const s = spot(i);
            slot.set(message.subarray(s.iv, s.iv + 12), 0);
            copyToSlot(message.subarray(s.content, s.content + s.length + 16), slot, 16 + inputShift);
          },
          runFrame: (i) => {
            const s = spot(i);
            const aad = bodyAad(messageId, s.final ? FINAL_FRAME_STRING : FRAME_STRING, i + 1, s.length);
            const tagAt = s.content + s.length;
            return openInto(
              key,
              message.subarray(s.iv, s.iv + 12),
              aad,
              message.subarray(s.content, tagAt),
              message.subarray(tagAt, tagAt + 16),
              out,
              i * frameLength,
            );
          },
        },
        concurrency - 1,
      );
    } finally {
      raw.fill(0);
    }
    if (result === undefined) {
      out.fill(0);
      return undefined;
    }
    if (result.firstBad >= 0) {
      out.fill(0);
      throw new KeyportError('Integrity', `frame ${result.firstBad + 1} failed authentication`);
    }
  }
  if (structural !== undefined) {
    out.fill(0);
    throw structural;
  }
  return { end, length: walkedLength(walk, frameLength) as number };
}

/**
 * Streams use frames in flight only up to this frame length: each frame in flight holds its
 * ciphertext and plaintext, so the memory bound becomes (frames in flight × frame length), kept
 * a constant here; larger frames stay on the sequential path (about two frames in memory).
 */
export const STREAM_PARALLEL_MAX_FRAME = 1024 * 1024;

/**
 * Streams use frames in flight only when `concurrency` is given: a stream's data arrives on the
 * calling thread, hot in cache, and handing a frame to a worker (one copy, one message, the
 * reply's buffers) costs that thread a good part of the AES it moves (measured on 2 cores:
 * 0.8-1.3x of one thread, see stream-workers.ts), so by default a stream stays on the zero-copy
 * sequential path.
 */
export function streamConcurrency(value: unknown): number {
  return value === undefined ? 1 : resolveConcurrency(value);
}

/**
 * Frames in flight for a stream at this concurrency (0: sequential). Threads beyond the cores
 * are never started (see stream-workers.ts), so more frames in flight would only hold memory.
 */
export function streamWindow(concurrency: number, frameLength: number): number {
  const threads = Math.min(concurrency, CORES);
  if (threads <= 1 || frameLength > STREAM_PARALLEL_MAX_FRAME || frameLength < 64 * 1024) return 0;
  return threads * IN_FLIGHT_PER_WORKER;
}

/**
 * Frames in parallel, in one process. Frames are independent (IV from the sequence number, AAD
 * from the message id, sequence number and length), so a whole buffer can be sealed or opened
 * with several frames in flight on libuv's thread pool through WebCrypto's AES-GCM, which runs
 * off the main thread; the main thread only lays out frame headers and copies results into the
 * one output buffer. Chosen by measurement over a worker pool: no worker start-up, no copy of the
 * caller's buffer into shared memory, and the same figures on 2 cores. The thread pool has 4
 * threads unless `UV_THREADPOOL_SIZE` says otherwise, which bounds the gain on larger machines.
 *
 * Small messages never come here: below `PARALLEL_MIN_BYTES` or `PARALLEL_MIN_FRAMES` the
 * synchronous path is faster than any hand-off.
 */

import { webcrypto } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { KeyportError } from '@keyport/core';
import { type AeadKey, bodyAad, FINAL_FRAME_STRING, FRAME_STRING } from './aead.js';
import { invalidCiphertext } from './bytes.js';
import { SEQUENCE_END } from './frames.js';

export const PARALLEL_MIN_BYTES = 4 * 1024 * 1024;
export const PARALLEL_MIN_FRAMES = 4;
/** Most frames in flight per unit of concurrency (keeps the pool fed between completions). */
const IN_FLIGHT_PER_WORKER = 2;
const MAX_CONCURRENCY = 64;

/** Default concurrency: the cores Node may use, capped at 8. */
export const DEFAULT_CONCURRENCY = Math.max(1, Math.min(8, availableParallelism()));

export function resolveConcurrency(value: unknown): number {
  if (value === undefined) return DEFAULT_CONCURRENCY;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > MAX_CONCURRENCY) {
    throw new KeyportError('InvalidArgument', `concurrency must be an integer from 1 to ${MAX_CONCURRENCY}`);
  }
  return value;
}

export function worthParallel(concurrency: number, bytes: number, frameLength: number): boolean {
  return concurrency > 1 && bytes >= PARALLEL_MIN_BYTES && bytes / frameLength >= PARALLEL_MIN_FRAMES;
}

/** The derived AES key as a WebCrypto key (the exported bytes are zeroed at once). */
export async function toWebKey(key: AeadKey, usage: 'encrypt' | 'decrypt'): Promise<webcrypto.CryptoKey> {
  if (key instanceof Uint8Array)
    return webcrypto.subtle.importKey('raw', key, { name: 'AES-GCM' }, false, [usage]);
  const raw = key.export();
  try {
    return await webcrypto.subtle.importKey('raw', raw, { name: 'AES-GCM' }, false, [usage]);
  } finally {
    raw.fill(0);
  }
}

/** Runs `tasks` with at most `limit` in flight; rejects with the first failure after all settle. */
async function runLimited(count: number, limit: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const failures: Array<{ error: unknown; index: number }> = [];
  const lane = async (): Promise<void> => {
    while (next < count && failures.length === 0) {
      const i = next++;
      try {
        await task(i);
      } catch (error) {
        failures.push({ error, index: i });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, lane));
  if (failures.length > 0) {
    throw failures.reduce((a, b) => (b.index < a.index ? b : a)).error;
  }
}

function frameIv(seq: number): Uint8Array {
  const iv = new Uint8Array(12);
  new DataView(iv.buffer).setUint32(8, seq);
  return iv;
}

/**
 * Seals `plaintext` as frames 1..n into `out` starting at `at` (the same bytes as the
 * synchronous path). Returns the offset after the body.
 */
export async function sealFramesParallel(
  key: AeadKey,
  messageId: Uint8Array,
  frameLength: number,
  plaintext: Uint8Array,
  out: Buffer,
  at: number,
  concurrency: number,
): Promise<number> {
  const webKey = await toWebKey(key, 'encrypt');
  const count = Math.max(1, Math.ceil(plaintext.length / frameLength));
  const regular = 4 + 12 + frameLength + 16;
  await runLimited(count, concurrency * IN_FLIGHT_PER_WORKER, async (i) => {
    const seq = i + 1;
    const final = seq === count;
    const start = i * frameLength;
    const content = plaintext.subarray(start, final ? plaintext.length : start + frameLength);
    let p = at + i * regular;
    if (final) {
      out.writeUInt32BE(SEQUENCE_END, p);
      p += 4;
    }
    out.writeUInt32BE(seq, p);
    const iv = frameIv(seq);
    out.set(iv, p + 4);
    p += 16;
    if (final) {
      out.writeUInt32BE(content.length, p);
      p += 4;
    }
    const aad = bodyAad(messageId, final ? FINAL_FRAME_STRING : FRAME_STRING, seq, content.length);
    const sealed = await webcrypto.subtle.encrypt(
      { name: 'AES-GCM', iv, additionalData: aad, tagLength: 128 },
      webKey,
      content,
    );
    // ciphertext || tag: exactly the frame's layout after its prefix.
    out.set(new Uint8Array(sealed), p);
  });
  const lastContent = plaintext.length - (count - 1) * frameLength;
  return at + (count - 1) * regular + 4 + 4 + 12 + 4 + lastContent + 16;
}

interface FrameSpot {
  readonly seq: number;
  readonly final: boolean;
  readonly iv: Uint8Array;
  /** Offset of content || tag in the message. */
  readonly content: number;
  readonly length: number;
}

/**
 * Opens the framed body of a whole message in parallel. The frame structure is read first
 * (cheap, in order, same checks as the streaming path); then every frame is decrypted, and
 * plaintext is written into `out` only from frames whose tag verified. If the structure breaks
 * at frame k, frames before k are still checked first, so the error is the one the sequential
 * path would report. Returns the body's end offset and the plaintext length.
 */
export async function openFramesParallel(
  key: AeadKey,
  messageId: Uint8Array,
  frameLength: number,
  maxFrames: number,
  message: Uint8Array,
  at: number,
  out: Buffer,
  concurrency: number,
): Promise<{ end: number; length: number }> {
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  const spots: FrameSpot[] = [];
  let structural: KeyportError | undefined;
  let p = at;
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
    const ivAt = p + (final ? 8 : 4);
    if (p + prefix + length + 16 > message.length) {
      structural = invalidCiphertext('the message is truncated');
      break;
    }
    spots.push({ seq, final, iv: message.subarray(ivAt, ivAt + 12), content: p + prefix, length });
    p += prefix + length + 16;
    if (final) break;
  }
  const webKey = await toWebKey(key, 'decrypt');
  try {
    await runLimited(spots.length, concurrency * IN_FLIGHT_PER_WORKER, async (i) => {
      const s = spots[i] as FrameSpot;
      const aad = bodyAad(messageId, s.final ? FINAL_FRAME_STRING : FRAME_STRING, s.seq, s.length);
      let plain: ArrayBuffer;
      try {
        plain = await webcrypto.subtle.decrypt(
          { name: 'AES-GCM', iv: s.iv, additionalData: aad, tagLength: 128 },
          webKey,
          message.subarray(s.content, s.content + s.length + 16),
        );
      } catch {
        throw new KeyportError('Integrity', `frame ${s.seq} failed authentication`);
      }
      out.set(new Uint8Array(plain), i * frameLength);
    });
  } catch (e) {
    out.fill(0);
    throw e;
  }
  if (structural !== undefined) {
    out.fill(0);
    throw structural;
  }
  const last = spots.at(-1) as FrameSpot;
  return { end: p, length: (spots.length - 1) * frameLength + last.length };
}

/**
 * Streams use frames in flight only up to this frame length: each frame in flight holds its
 * ciphertext and plaintext, so the memory bound becomes (frames in flight × frame length), kept
 * a constant here; larger frames stay on the sequential path (about two frames in memory).
 */
export const STREAM_PARALLEL_MAX_FRAME = 1024 * 1024;

/**
 * Streams use frames in flight only when `concurrency` is given: measured on the 2-core machine,
 * a stream's frames must be gathered from the chunks they arrive in and copied in and out of
 * WebCrypto on the main thread, which cost about as much CPU as the AES they move off it, so
 * by default a stream stays on the zero-copy sequential path.
 */
export function streamConcurrency(value: unknown): number {
  return value === undefined ? 1 : resolveConcurrency(value);
}

/** Frames in flight for a stream at this concurrency (0: sequential). */
export function streamWindow(concurrency: number, frameLength: number): number {
  if (concurrency <= 1 || frameLength > STREAM_PARALLEL_MAX_FRAME || frameLength < 64 * 1024) return 0;
  return concurrency * IN_FLIGHT_PER_WORKER;
}

/** AES-GCM of one frame on the thread pool: ciphertext || tag. */
export async function webSeal(
  webKey: webcrypto.CryptoKey,
  iv: Uint8Array,
  aad: Uint8Array,
  content: Uint8Array,
): Promise<Uint8Array> {
  return new Uint8Array(
    await webcrypto.subtle.encrypt(
      { name: 'AES-GCM', iv, additionalData: aad, tagLength: 128 },
      webKey,
      content,
    ),
  );
}

/** Decrypts one frame (content || tag) on the thread pool; Integrity when the tag fails. */
export async function webOpen(
  webKey: webcrypto.CryptoKey,
  iv: Uint8Array,
  aad: Uint8Array,
  contentAndTag: Uint8Array,
  what: string,
): Promise<Uint8Array> {
  try {
    return new Uint8Array(
      await webcrypto.subtle.decrypt(
        { name: 'AES-GCM', iv, additionalData: aad, tagLength: 128 },
        webKey,
        contentAndTag,
      ),
    );
  } catch {
    throw new KeyportError('Integrity', `${what} failed authentication`);
  }
}

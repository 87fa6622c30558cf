/**
 * Framed body encryption (data-format/message-body.md). A regular frame is
 * `u32 seq || IV || content (frame length) || tag`; the final frame is
 * `0xFFFFFFFF || u32 seq || IV || u32 content length || content || tag`.
 * When the plaintext is an exact multiple of the frame length the final frame is full
 * (the spec's SHOULD); an empty plaintext is one empty final frame.
 */
import { KeyportError } from '@keyport/core';
import { type AeadKey, bodyAad, FINAL_FRAME_STRING, FRAME_STRING, sealInto, sealPieces } from './aead.js';

export const SEQUENCE_END = 0xffff_ffff;
export const MAX_FRAMES = 0xffff_fffe;

export function regularFrameSize(frameLength: number): number {
  return 4 + 12 + frameLength + 16;
}

export function finalFrameSize(contentLength: number): number {
  return 4 + 4 + 12 + 4 + contentLength + 16;
}

/** Size of the framed body for a plaintext of `length` bytes. */
export function bodySize(length: number, frameLength: number): number {
  const frames = Math.max(1, Math.ceil(length / frameLength));
  return (frames - 1) * regularFrameSize(frameLength) + finalFrameSize(length - (frames - 1) * frameLength);
}

/**
 * Writes a frame's prefix at `at`: (final: 0xFFFFFFFF ||) u32 seq || IV (the sequence number,
 * big-endian, in 12 bytes) (final: || u32 content length). Returns where the content starts.
 */
export function writeFramePrefix(
  out: Buffer,
  at: number,
  seq: number,
  final: boolean,
  length: number,
): number {
  let p = at;
  if (final) {
    out.writeUInt32BE(SEQUENCE_END, p);
    p += 4;
  }
  out.writeUInt32BE(seq, p);
  out.fill(0, p + 4, p + 12);
  out.writeUInt32BE(seq, p + 12);
  p += 16;
  if (final) {
    out.writeUInt32BE(length, p);
    p += 4;
  }
  return p;
}

export class FrameSealer {
  private seq = 1;

  constructor(
    readonly key: AeadKey,
    readonly messageId: Uint8Array,
    readonly frameLength: number,
  ) {}

  private next(): number {
    if (this.seq > MAX_FRAMES)
      throw new KeyportError('InvalidArgument', 'the plaintext needs more frames than the format allows');
    return this.seq++;
  }

  /** Writes one frame into `out` at `at` and returns the offset after it. */
  writeFrame(out: Buffer, at: number, plaintext: Uint8Array, final: boolean): number {
    const seq = this.next();
    const p = writeFramePrefix(out, at, seq, final, plaintext.length);
    // The IV is used from where the prefix holds it.
    const ivAt = p - (final ? 16 : 12);
    const iv = out.subarray(ivAt, ivAt + 12);
    const aad = bodyAad(this.messageId, final ? FINAL_FRAME_STRING : FRAME_STRING, seq, plaintext.length);
    sealInto(this.key, iv, aad, plaintext, out, p);
    return p + plaintext.length + 16;
  }

  /**
   * One frame over the concatenation of `parts` (views, never joined), as the pieces to emit:
   * the frame prefix, what each `update` returned, the tag. Streaming seal sends these as they
   * are, so no frame-sized buffer is allocated and no ciphertext byte is copied.
   */
  framePieces(parts: readonly Uint8Array[], length: number, final: boolean): Buffer[] {
    const { prefix, iv, aad } = this.nextFrameHeader(length, final);
    const pieces = sealPieces(this.key, iv, aad, parts);
    pieces.unshift(prefix);
    return pieces;
  }

  /** Takes the next sequence number: the frame's prefix bytes, its IV (a view) and its AAD. */
  nextFrameHeader(length: number, final: boolean): { prefix: Buffer; iv: Uint8Array; aad: Buffer } {
    const seq = this.next();
    const prefix = Buffer.allocUnsafe(final ? 24 : 16);
    writeFramePrefix(prefix, 0, seq, final, length);
    const aad = bodyAad(this.messageId, final ? FINAL_FRAME_STRING : FRAME_STRING, seq, length);
    const ivAt = final ? 8 : 4;
    return { prefix, iv: prefix.subarray(ivAt, ivAt + 12), aad };
  }

  /** One frame as its own buffer. */
  frame(plaintext: Uint8Array, final: boolean): Buffer {
    const out = Buffer.allocUnsafe(
      final ? finalFrameSize(plaintext.length) : regularFrameSize(plaintext.length),
    );
    this.writeFrame(out, 0, plaintext, final);
    return out;
  }
}

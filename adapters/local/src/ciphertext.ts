/**
 * Ciphertexts name the key version that made them, so decrypt needs no version. They are core's
 * keyport frame (ciphertext-frame.ts):
 *
 * ```
 * AES-256-GCM : frame(AES_256_GCM, version) | IV (12) | ciphertext | tag (16)
 *               AAD = encodeContext(context) (core's canonical encoding; empty for none)
 * RSA-OAEP    : frame(RSA_OAEP_SHA_256, version) | RSAES-OAEP-SHA-256 ciphertext (modulus length)
 *               OAEP label = encodeContext(context) (omitted when empty)
 * ```
 *
 * Ciphertexts written before the frame (`0x01` AES-GCM / `0x02` RSA-OAEP-SHA-256 | u32 version)
 * are still read, in the local dialect (test/fixtures/format-v1 proves it).
 */
import { FRAME_MECHANISMS, type FrameMechanism, KeyportError, readAnyFrame, writeFrame } from '@keyport/core';
import { localError } from './errors.js';

/** The legacy prefix bytes, kept for readers of old data. */
export const FORMAT_AES_GCM = 0x01;
export const FORMAT_RSA_OAEP = 0x02;

export interface ParsedCiphertext {
  readonly mechanism: FrameMechanism;
  readonly version: number;
  /** The mechanism's bytes. */
  readonly payload: Buffer;
}

export function frameCiphertext(mechanism: FrameMechanism, version: number, ...body: Uint8Array[]): Buffer {
  const framed = writeFrame(mechanism, String(version), ...body);
  return Buffer.from(framed.buffer, framed.byteOffset, framed.byteLength);
}

export function parseCiphertext(bytes: Uint8Array, keyUri: string): ParsedCiphertext {
  const bad = (why: string): never => {
    throw localError('InvalidCiphertext', `ciphertext is not valid for this key (${why})`, keyUri);
  };
  let frame: ReturnType<typeof readAnyFrame>;
  try {
    frame = readAnyFrame(bytes, 'local');
  } catch (e) {
    return bad(e instanceof KeyportError ? e.message : 'malformed');
  }
  if (frame.mechanism === FRAME_MECHANISMS.RSA_OAEP_SHA_1) bad('unknown format');
  if (!/^[1-9][0-9]{0,9}$/.test(frame.keyVersion) || Number(frame.keyVersion) > 0xffff_ffff)
    bad('key version');
  const body = frame.body;
  return {
    mechanism: frame.mechanism,
    version: Number(frame.keyVersion),
    payload: Buffer.from(body.buffer, body.byteOffset, body.byteLength),
  };
}

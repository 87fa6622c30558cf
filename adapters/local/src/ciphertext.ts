/**
 * Ciphertexts name the key version that made them, so decrypt needs no version:
 *
 * ```
 * AES-256-GCM : 0x01 | version u32be | IV (12) | ciphertext | tag (16)
 *               AAD = encodeContext(context) (core's canonical encoding; empty for none)
 * RSA-OAEP    : 0x02 | version u32be | RSAES-OAEP-SHA-256 ciphertext (modulus length)
 *               OAEP label = encodeContext(context) (omitted when empty)
 * ```
 */
import { localError } from './errors.js';

export const FORMAT_AES_GCM = 0x01;
export const FORMAT_RSA_OAEP = 0x02;
export const IV_LEN = 12;
export const TAG_LEN = 16;
const PREFIX_LEN = 5;

export interface ParsedCiphertext {
  readonly format: number;
  readonly version: number;
  /** Everything after the 5-byte prefix. */
  readonly payload: Buffer;
}

export function ciphertextPrefix(format: number, version: number): Buffer {
  const prefix = Buffer.alloc(PREFIX_LEN);
  prefix[0] = format;
  prefix.writeUInt32BE(version, 1);
  return prefix;
}

export function parseCiphertext(bytes: Uint8Array, keyUri: string): ParsedCiphertext {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (why: string): never => {
    throw localError('InvalidCiphertext', `ciphertext is not valid for this key (${why})`, keyUri);
  };
  if (buf.length < PREFIX_LEN) bad('too short');
  const format = buf[0] as number;
  if (format !== FORMAT_AES_GCM && format !== FORMAT_RSA_OAEP) bad('unknown format');
  const version = buf.readUInt32BE(1);
  if (version === 0) bad('no key version');
  const payload = buf.subarray(PREFIX_LEN);
  if (format === FORMAT_AES_GCM && payload.length < IV_LEN + TAG_LEN) bad('too short');
  return { format, version, payload };
}

/**
 * The self-describing ciphertext: core's keyport frame (ciphertext-frame.ts) — which mechanism,
 * which key version, then the mechanism's bytes.
 *
 *   AES-GCM:  frame(AES_256_GCM, version) | IV (12) | ciphertext | tag (16)   AAD = encodeContext(context)
 *   RSA-OAEP: frame(RSA_OAEP_SHA_1 or RSA_OAEP_SHA_256, version) | OAEP block
 *
 * The local keystore writes the same frame, so tools that open one open the other given the key
 * material. The header is not in the AAD: a changed version selects another key and fails the
 * tag check. Ciphertexts written before the frame (`0x01` AES-GCM, `0x02` RSA-OAEP-SHA-1,
 * `0x03` RSA-OAEP-SHA-256 | u32 version) are still read, in the pkcs11 dialect.
 */
import { FRAME_MECHANISMS, readAnyFrame, writeFrame } from '@keyport/core';

export const FORMAT = {
  AES_GCM: FRAME_MECHANISMS.AES_256_GCM,
  RSA_OAEP_SHA1: FRAME_MECHANISMS.RSA_OAEP_SHA_1,
  RSA_OAEP_SHA256: FRAME_MECHANISMS.RSA_OAEP_SHA_256,
} as const;
export type Format = (typeof FORMAT)[keyof typeof FORMAT];

export { GCM_IV_BYTES, GCM_TAG_BYTES } from '@keyport/core';

export interface ParsedCiphertext {
  readonly format: Format;
  readonly version: number;
  readonly body: Buffer;
}

/** Frame headers by mechanism and version: core writes each once, every call reuses it. */
const headers = new Map<number, Uint8Array>();

export function frameHeader(format: Format, version: number): Uint8Array {
  const id = version * 256 + format;
  let header = headers.get(id);
  if (header === undefined) {
    header = writeFrame(format, String(version));
    if (headers.size >= 4096) headers.clear();
    headers.set(id, header);
  }
  return header;
}

export function writeCiphertext(format: Format, version: number, ...parts: Uint8Array[]): Uint8Array {
  const header = frameHeader(format, version);
  let size = header.length;
  for (const part of parts) size += part.length;
  // Its own memory (not a view of Node's shared Buffer pool), as core's writeFrame returns.
  const out = new Uint8Array(size);
  out.set(header);
  let at = header.length;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Undefined when the bytes are not a keyport PKCS#11 ciphertext (framed or of the first format). */
export function readCiphertext(bytes: Uint8Array): ParsedCiphertext | undefined {
  let frame: ReturnType<typeof readAnyFrame>;
  try {
    frame = readAnyFrame(bytes, 'pkcs11');
  } catch {
    return undefined;
  }
  if (!/^[1-9][0-9]{0,9}$/.test(frame.keyVersion) || Number(frame.keyVersion) > 0xffff_ffff) return undefined;
  if (frame.mechanism === FRAME_MECHANISMS.WRAPPED_KEY_AES_256_GCM) return undefined;
  const body = Buffer.from(frame.body.buffer, frame.body.byteOffset, frame.body.byteLength);
  return { format: frame.mechanism, version: Number(frame.keyVersion), body };
}

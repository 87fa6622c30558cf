/**
 * keyport's Key Vault ciphertext: core's keyport frame, self-describing, so decrypt needs no
 * version and a context mismatch fails exactly as on providers with native AAD.
 *
 * ```
 * RSA keys:  frame(WRAPPED_KEY_AES_256_GCM, version) | u16 w | content key wrapped by the vault
 *            (wrapKey RSA-OAEP-256) | IV (12) | ciphertext | tag (16)   AES-256-GCM by keyport,
 *            AAD = encodeContext(context) — core's emulated-context.ts
 * HSM AES:   frame(AES_256_GCM, version) | IV (12) | ciphertext | tag (16)   A256GCM by the HSM,
 *            AAD = encodeContext(context) (omitted when empty)
 * ```
 *
 * The first format (before the frame) is still read: `"KV" | mode (0x01 hybrid, 0x02 HSM GCM) |
 * n | version | the same body` (test/fixtures/format-v1.json).
 */
import {
  FRAME_MECHANISMS,
  isKeyportFrame,
  KeyportError,
  parseBoundBody,
  readFrame,
  splitGcmBody,
  writeFrame,
} from '@keyport/core';
import { PROVIDER_NAME } from './errors.js';

export const MODE_RSA_HYBRID = 0x01;
export const MODE_HSM_GCM = 0x02;
export type CiphertextMode = typeof MODE_RSA_HYBRID | typeof MODE_HSM_GCM;

const MAGIC = [0x4b, 0x56] as const;
const VERSION = /^[A-Za-z0-9]{1,64}$/;
export const IV_BYTES = 12;
export const TAG_BYTES = 16;

export interface ParsedCiphertext {
  readonly mode: CiphertextMode;
  readonly version: string;
  /** Everything after the version: what `iv`, `ciphertext`, `tag` (and `wrappedKey`) are cut from. */
  readonly body?: Uint8Array;
  /** Mode 0x01 only. */
  readonly wrappedKey?: Uint8Array;
  readonly iv: Uint8Array;
  readonly ciphertext: Uint8Array;
  readonly tag: Uint8Array;
}

function invalid(why: string): never {
  throw new KeyportError('InvalidCiphertext', `not a keyport Key Vault ciphertext (${why})`, {
    provider: PROVIDER_NAME,
  });
}

export function formatCiphertext(c: ParsedCiphertext): Uint8Array {
  if (!VERSION.test(c.version)) throw new Error('key version is not a Key Vault version id');
  if (c.mode === MODE_HSM_GCM)
    return writeFrame(FRAME_MECHANISMS.AES_256_GCM, c.version, c.iv, c.ciphertext, c.tag);
  const wrapped = c.wrappedKey ?? new Uint8Array(0);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(wrapped.length);
  return writeFrame(
    FRAME_MECHANISMS.WRAPPED_KEY_AES_256_GCM,
    c.version,
    len,
    wrapped,
    c.iv,
    c.ciphertext,
    c.tag,
  );
}

/** A framed ciphertext, or one of the first format ("KV"). */
export function parseCiphertext(bytes: Uint8Array): ParsedCiphertext {
  if (!isKeyportFrame(bytes)) return parseFirstFormat(bytes);
  let frame: ReturnType<typeof readFrame>;
  try {
    frame = readFrame(bytes);
  } catch {
    return invalid('frame');
  }
  if (!VERSION.test(frame.keyVersion)) invalid('version');
  try {
    if (frame.mechanism === FRAME_MECHANISMS.AES_256_GCM) {
      return { mode: MODE_HSM_GCM, version: frame.keyVersion, body: frame.body, ...splitGcmBody(frame.body) };
    }
    if (frame.mechanism === FRAME_MECHANISMS.WRAPPED_KEY_AES_256_GCM) {
      return {
        mode: MODE_RSA_HYBRID,
        version: frame.keyVersion,
        body: frame.body,
        ...parseBoundBody(frame.body),
      };
    }
  } catch {
    return invalid('length');
  }
  return invalid('mechanism');
}

function parseFirstFormat(bytes: Uint8Array): ParsedCiphertext {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 4 || b[0] !== MAGIC[0] || b[1] !== MAGIC[1]) invalid('magic');
  const mode = b[2];
  if (mode !== MODE_RSA_HYBRID && mode !== MODE_HSM_GCM) invalid('mode');
  const n = b[3] as number;
  let at = 4 + n;
  if (b.length < at) invalid('length');
  const version = b.subarray(4, at).toString('latin1');
  if (!VERSION.test(version)) invalid('version');
  const body = b.subarray(at);
  let wrappedKey: Uint8Array | undefined;
  if (mode === MODE_RSA_HYBRID) {
    if (b.length < at + 2) invalid('length');
    const w = b.readUInt16BE(at);
    at += 2;
    if (w === 0 || b.length < at + w) invalid('length');
    wrappedKey = b.subarray(at, at + w);
    at += w;
  }
  if (b.length < at + IV_BYTES + TAG_BYTES) invalid('length');
  const iv = b.subarray(at, at + IV_BYTES);
  const ciphertext = b.subarray(at + IV_BYTES, b.length - TAG_BYTES);
  const tag = b.subarray(b.length - TAG_BYTES);
  return wrappedKey === undefined
    ? { mode, version, body, iv, ciphertext, tag }
    : { mode, version, body, wrappedKey, iv, ciphertext, tag };
}

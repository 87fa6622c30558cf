/**
 * keyport's Key Vault ciphertext: self-describing, so decrypt needs no version and a context
 * mismatch fails exactly as on providers with native AAD. All integers are big-endian.
 *
 * ```
 * 0x4B 0x56           magic "KV"
 * mode (1 byte)       0x01 RSA-OAEP-256 hybrid | 0x02 AES-256-GCM at the Managed HSM
 * n (1 byte), n bytes key version (ASCII letters and digits, 1..64)
 * mode 0x01:  u16 w, w bytes   the content key wrapped by the vault (wrapKey RSA-OAEP-256)
 *             12 bytes IV | ciphertext | 16 bytes tag   AES-256-GCM by keyport,
 *                                                        AAD = encodeContext(context)
 * mode 0x02:  12 bytes IV | ciphertext | 16 bytes tag   A256GCM by the HSM,
 *                                                        AAD = encodeContext(context) (omitted when empty)
 * ```
 */
import { KeyportError } from '@keyport/core';
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
  const version = Buffer.from(c.version, 'ascii');
  const parts: Uint8Array[] = [Uint8Array.from([...MAGIC, c.mode, version.length]), version];
  if (c.mode === MODE_RSA_HYBRID) {
    const wrapped = c.wrappedKey ?? new Uint8Array(0);
    const len = Buffer.alloc(2);
    len.writeUInt16BE(wrapped.length);
    parts.push(len, wrapped);
  }
  parts.push(c.iv, c.ciphertext, c.tag);
  return new Uint8Array(Buffer.concat(parts));
}

export function parseCiphertext(bytes: Uint8Array): ParsedCiphertext {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 4 || b[0] !== MAGIC[0] || b[1] !== MAGIC[1]) invalid('magic');
  const mode = b[2];
  if (mode !== MODE_RSA_HYBRID && mode !== MODE_HSM_GCM) invalid('mode');
  const n = b[3] as number;
  let at = 4 + n;
  if (b.length < at) invalid('length');
  const version = b.subarray(4, at).toString('latin1');
  if (!VERSION.test(version)) invalid('version');
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
    ? { mode, version, iv, ciphertext, tag }
    : { mode, version, wrappedKey, iv, ciphertext, tag };
}

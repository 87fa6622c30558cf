/**
 * The keyport ciphertext frame: one self-describing layout for every driver whose provider
 * returns bare ciphertexts (the local keystore, PKCS#11, hybrid RSA on Key Vault), so decrypt
 * needs no version and one reader serves them all. All integers are big-endian.
 *
 * ```
 * 'K' 'P' (0x4B 0x50)   magic
 * 0x01                  frame version
 * mechanism (1 byte)    what the body is, FRAME_MECHANISMS
 * n (1 byte), n bytes   key version that sealed it: 1..64 of [A-Za-z0-9._-]
 * body                  the mechanism's bytes (AES-GCM: IV (12) | ciphertext | tag (16))
 * ```
 *
 * The frame is not authenticated data: AES-GCM's AAD stays `encodeContext(context)` alone, so a
 * body moves between providers holding the same key material by re-framing (BYOK, transit), and
 * a forged version selects another key and fails the tag.
 *
 * Before this frame, drivers wrote their own prefixes (`0x01..0x03 | u32 version`), where
 * `0x02` meant RSA-OAEP-SHA-256 to the local keystore and RSA-OAEP-SHA-1 to PKCS#11; those are
 * read here through `readLegacyFrame` with the writing driver's dialect, never written again.
 */
import { KeyportError } from './errors.js';

export const FRAME_MECHANISMS = {
  /** AES-256-GCM by the driver or provider: IV (12) | ciphertext | tag (16). */
  AES_256_GCM: 0x01,
  /** One RSAES-OAEP-SHA-256 block. */
  RSA_OAEP_SHA_256: 0x02,
  /** One RSAES-OAEP-SHA-1 block. */
  RSA_OAEP_SHA_1: 0x03,
  /**
   * Context bound by keyport for a key without AAD (emulated-context.ts): u16 w | content key
   * wrapped by the provider (w bytes) | IV (12) | ciphertext | tag (16), AES-256-GCM by keyport.
   */
  WRAPPED_KEY_AES_256_GCM: 0x04,
} as const;
export type FrameMechanism = (typeof FRAME_MECHANISMS)[keyof typeof FRAME_MECHANISMS];

export interface CiphertextFrame {
  readonly mechanism: FrameMechanism;
  readonly keyVersion: string;
  readonly body: Uint8Array;
}

const MAGIC = [0x4b, 0x50] as const;
const FRAME_VERSION = 0x01;
const KEY_VERSION = /^[A-Za-z0-9._-]{1,64}$/;
const MECHANISMS: ReadonlySet<number> = new Set(Object.values(FRAME_MECHANISMS));
export const GCM_IV_BYTES = 12;
export const GCM_TAG_BYTES = 16;

function invalid(why: string): never {
  throw new KeyportError('InvalidCiphertext', `not a keyport ciphertext (${why})`);
}

export function writeFrame(mechanism: FrameMechanism, keyVersion: string, ...body: Uint8Array[]): Uint8Array {
  if (!MECHANISMS.has(mechanism)) throw new KeyportError('InvalidArgument', 'unknown frame mechanism');
  if (!KEY_VERSION.test(keyVersion)) {
    throw new KeyportError('InvalidArgument', 'a framed key version is 1..64 of [A-Za-z0-9._-]');
  }
  // Written in place, one allocation: this runs on every encrypt of several drivers.
  const n = keyVersion.length;
  let size = 5 + n;
  for (const part of body) size += part.length;
  const out = new Uint8Array(size);
  out[0] = MAGIC[0];
  out[1] = MAGIC[1];
  out[2] = FRAME_VERSION;
  out[3] = mechanism;
  out[4] = n;
  // ASCII only (KEY_VERSION): one byte per character.
  for (let i = 0; i < n; i++) out[5 + i] = keyVersion.charCodeAt(i);
  let at = 5 + n;
  for (const part of body) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * The parts in one fresh Uint8Array, copied once (`size`: their total, when the caller knows it).
 * Not `Buffer.concat`: small Buffers are slices of a shared pool, whose `.buffer` would hand a
 * caller other data of the process.
 */
export function concatBytes(parts: readonly Uint8Array[], size?: number): Uint8Array {
  const out = new Uint8Array(size ?? parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Does `bytes` start like a keyport frame (magic and frame version)? */
export function isKeyportFrame(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === MAGIC[0] && bytes[1] === MAGIC[1] && bytes[2] === FRAME_VERSION;
}

/** Parses a keyport frame; InvalidCiphertext for anything else or anything malformed. */
export function readFrame(bytes: Uint8Array): CiphertextFrame {
  if (!(bytes instanceof Uint8Array)) invalid('not bytes');
  if (!isKeyportFrame(bytes)) invalid('magic or frame version');
  const mechanism = bytes[3];
  const n = bytes[4];
  if (mechanism === undefined || n === undefined) invalid('truncated header');
  if (!MECHANISMS.has(mechanism)) invalid('unknown mechanism');
  if (bytes.length < 5 + n) invalid('truncated key version');
  const keyVersion = Buffer.from(bytes.subarray(5, 5 + n)).toString('latin1');
  if (!KEY_VERSION.test(keyVersion)) invalid('malformed key version');
  const body = bytes.subarray(5 + n);
  if (mechanism === FRAME_MECHANISMS.AES_256_GCM && body.length < GCM_IV_BYTES + GCM_TAG_BYTES)
    invalid('too short');
  if (body.length === 0) invalid('empty body');
  return { mechanism: mechanism as FrameMechanism, keyVersion, body };
}

/** Which driver wrote a pre-frame ciphertext: the meaning of its first byte depends on it. */
export type LegacyDialect = 'local' | 'pkcs11';

const LEGACY: Readonly<Record<LegacyDialect, Readonly<Record<number, FrameMechanism>>>> = {
  local: { 1: FRAME_MECHANISMS.AES_256_GCM, 2: FRAME_MECHANISMS.RSA_OAEP_SHA_256 },
  pkcs11: {
    1: FRAME_MECHANISMS.AES_256_GCM,
    2: FRAME_MECHANISMS.RSA_OAEP_SHA_1,
    3: FRAME_MECHANISMS.RSA_OAEP_SHA_256,
  },
};

/** Parses a pre-frame ciphertext (`tag | u32 version | body`) in the dialect of its driver. */
export function readLegacyFrame(bytes: Uint8Array, dialect: LegacyDialect): CiphertextFrame {
  if (!(bytes instanceof Uint8Array) || bytes.length < 6) invalid('too short');
  const mechanism = LEGACY[dialect][bytes[0] as number];
  if (mechanism === undefined) invalid('unknown format');
  const version = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readUInt32BE(1);
  if (version === 0) invalid('no key version');
  const body = bytes.subarray(5);
  if (mechanism === FRAME_MECHANISMS.AES_256_GCM && body.length < GCM_IV_BYTES + GCM_TAG_BYTES)
    invalid('too short');
  return { mechanism, keyVersion: String(version), body };
}

/** A keyport frame, or (for the drivers that wrote them) a pre-frame ciphertext of `dialect`. */
export function readAnyFrame(bytes: Uint8Array, dialect: LegacyDialect): CiphertextFrame {
  return isKeyportFrame(bytes) ? readFrame(bytes) : readLegacyFrame(bytes, dialect);
}

/** An AES-GCM body's parts. */
export function splitGcmBody(body: Uint8Array): { iv: Uint8Array; ciphertext: Uint8Array; tag: Uint8Array } {
  if (body.length < GCM_IV_BYTES + GCM_TAG_BYTES) invalid('too short');
  return {
    iv: body.subarray(0, GCM_IV_BYTES),
    ciphertext: body.subarray(GCM_IV_BYTES, body.length - GCM_TAG_BYTES),
    tag: body.subarray(body.length - GCM_TAG_BYTES),
  };
}

/** The same frame naming another key version (moving a body between providers, see above). */
export function reframe(bytes: Uint8Array, keyVersion: string, dialect?: LegacyDialect): Uint8Array {
  const frame = dialect === undefined ? readFrame(bytes) : readAnyFrame(bytes, dialect);
  return writeFrame(frame.mechanism, keyVersion, frame.body);
}

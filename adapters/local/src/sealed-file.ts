/**
 * The keystore file's byte format: a passphrase-sealed JSON body.
 *
 * ```
 * offset len
 *  0      8  magic "KPKSTORE"
 *  8      1  file format version (1)
 *  9      1  KDF id (1 = scrypt)
 * 10      1  scrypt log2(N)
 * 11      1  scrypt r
 * 12      1  scrypt p
 * 13     16  salt
 * 29     32  passphrase check: HMAC-SHA256(checkKey, bytes 0..28)
 * 61     12  AES-GCM IV (random per write)
 * 73      4  body length L (u32 big-endian)
 * 77      L  AES-256-GCM ciphertext of the UTF-8 JSON body, AAD = bytes 0..76
 * 77+L   16  GCM tag
 * 93+L   32  SHA-256 of every byte before it
 * ```
 * scrypt(passphrase, salt, N, r, p) yields 64 bytes: the body key (first 32) and the check
 * key (last 32). The unkeyed trailing digest tells accidental damage (Integrity) from a
 * wrong passphrase (the check fails: AccessDenied) before any decryption is tried; a file
 * whose digest is intact but whose GCM tag fails was edited deliberately (Integrity).
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  randomBytes,
  scrypt,
  timingSafeEqual,
} from 'node:crypto';
import { abortError, localError } from './errors.js';

const MAGIC = Buffer.from('KPKSTORE', 'ascii');
const FILE_FORMAT = 1;
const KDF_SCRYPT = 1;
const SALT_LEN = 16;
const CHECK_LEN = 32;
const IV_LEN = 12;
const TAG_LEN = 16;
const DIGEST_LEN = 32;
const CHECKED_PREFIX = 8 + 5 + SALT_LEN; // bytes covered by the passphrase check
export const HEADER_LEN = CHECKED_PREFIX + CHECK_LEN + IV_LEN + 4;

export interface ScryptParams {
  /** log2 of the CPU/memory cost N. */
  readonly log2N: number;
  readonly r: number;
  readonly p: number;
}

/** 2^15 × 8 × 128 B = 32 MiB of memory and ~0.1 s per derivation on a laptop core. */
export const DEFAULT_SCRYPT: ScryptParams = { log2N: 15, r: 8, p: 1 };
/** Accepted on read and on create; below 2^10 scrypt protects nothing. */
export const SCRYPT_LIMITS = { log2N: [10, 22], r: [1, 32], p: [1, 16] } as const;

/**
 * Bounds on the combined cost. Each parameter alone in range still allowed N = 2^22, r = 32,
 * p = 16: 16 GiB of memory and 2^31 block mixes, and the parameters come from the file's
 * unauthenticated header, so a hostile (or bit-rotted, digest recomputed) file made open
 * hang for hours. Memory 128·N·r is capped at 256 MiB and work N·r·p at 2^22 (16 times the
 * default's 2^18: ~1.3 s where the default takes ~85 ms); a 64× cap let a hostile header cost
 * ~6 s per open. Derivation is also abortable (deadline, signal), see deriveKeys.
 */
export const SCRYPT_MAX_N_R = 2 ** 21;
export const SCRYPT_MAX_WORK = 2 ** 22;

export function validScrypt(p: ScryptParams): boolean {
  const within = (v: number, [lo, hi]: readonly [number, number]) =>
    Number.isInteger(v) && v >= lo && v <= hi;
  if (
    !within(p.log2N, SCRYPT_LIMITS.log2N) ||
    !within(p.r, SCRYPT_LIMITS.r) ||
    !within(p.p, SCRYPT_LIMITS.p)
  ) {
    return false;
  }
  const nr = 2 ** p.log2N * p.r;
  return nr <= SCRYPT_MAX_N_R && nr * p.p <= SCRYPT_MAX_WORK;
}

/** Keys derived from the passphrase for one salt and parameter set. */
export interface DerivedKeys {
  readonly params: ScryptParams;
  readonly salt: Buffer;
  readonly bodyKey: Buffer;
  readonly checkKey: Buffer;
}

/**
 * Derives the file keys: asynchronous (libuv's pool, not the event loop) and abortable: when
 * `signal` fires the promise rejects at once with Aborted or Timeout; the derivation itself
 * cannot be interrupted, so its late result is wiped when it arrives. The parameters are
 * checked against the bounds first, whoever passes them.
 */
export async function deriveKeys(
  passphrase: Uint8Array,
  params: ScryptParams,
  salt: Buffer,
  signal?: AbortSignal,
): Promise<DerivedKeys> {
  if (!validScrypt(params)) throw localError('Integrity', 'scrypt parameters out of range');
  if (signal?.aborted) throw abortError(signal);
  const N = 2 ** params.log2N;
  const out = await new Promise<Buffer>((resolve, reject) => {
    let settled = false;
    const onAbort = (): void => {
      settled = true;
      reject(abortError(signal, undefined, 'deriving the keystore key'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    scrypt(
      passphrase,
      salt,
      64,
      { N, r: params.r, p: params.p, maxmem: 256 * N * params.r + 1024 * 1024 },
      (err, key) => {
        signal?.removeEventListener('abort', onAbort);
        if (settled) {
          key?.fill(0);
          return;
        }
        if (err) reject(localError('Internal', 'scrypt failed', undefined, err));
        else resolve(key);
      },
    );
  });
  return { params, salt, bodyKey: out.subarray(0, 32), checkKey: out.subarray(32, 64) };
}

export function newSalt(): Buffer {
  return randomBytes(SALT_LEN);
}

/** Wipes derived keys (they share one buffer). */
export function wipeKeys(keys: DerivedKeys): void {
  keys.bodyKey.fill(0);
  keys.checkKey.fill(0);
}

function prefix(params: ScryptParams, salt: Buffer): Buffer {
  return Buffer.concat([
    MAGIC,
    Buffer.from([FILE_FORMAT, KDF_SCRYPT, params.log2N, params.r, params.p]),
    salt,
  ]);
}

/** Seals `body` (UTF-8 JSON) into the file format. */
export function seal(body: Uint8Array, keys: DerivedKeys): Buffer {
  const head = prefix(keys.params, keys.salt);
  const check = createHmac('sha256', keys.checkKey).update(head).digest();
  const iv = randomBytes(IV_LEN);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  const header = Buffer.concat([head, check, iv, len]);
  const cipher = createCipheriv('aes-256-gcm', keys.bodyKey, iv);
  cipher.setAAD(header);
  const ct = Buffer.concat([cipher.update(body), cipher.final()]);
  const withoutDigest = Buffer.concat([header, ct, cipher.getAuthTag()]);
  return Buffer.concat([withoutDigest, createHash('sha256').update(withoutDigest).digest()]);
}

/** The KDF parameters and salt a file was sealed with, after the structural checks. */
export interface SealedHeader {
  readonly params: ScryptParams;
  readonly salt: Buffer;
}

function damaged(why: string): never {
  throw localError('Integrity', `keystore file is damaged or not a keystore (${why}); it was left unchanged`);
}

/** Checks everything that needs no passphrase: magic, length, digest, format, parameters. */
export function readHeader(file: Uint8Array): SealedHeader {
  const buf = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  if (buf.length < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC)) damaged('bad magic');
  if (buf.length < HEADER_LEN + TAG_LEN + DIGEST_LEN) damaged('truncated');
  const digestAt = buf.length - DIGEST_LEN;
  const digest = createHash('sha256').update(buf.subarray(0, digestAt)).digest();
  if (!timingSafeEqual(digest, buf.subarray(digestAt))) damaged('checksum mismatch');
  if (buf[8] !== FILE_FORMAT) damaged(`unknown format version ${buf[8]}`);
  if (buf[9] !== KDF_SCRYPT) damaged('unknown KDF');
  const params: ScryptParams = { log2N: buf[10] as number, r: buf[11] as number, p: buf[12] as number };
  if (!validScrypt(params)) damaged('KDF parameters out of range');
  if (buf.readUInt32BE(HEADER_LEN - 4) !== buf.length - HEADER_LEN - TAG_LEN - DIGEST_LEN)
    damaged('length mismatch');
  return { params, salt: Buffer.from(buf.subarray(13, 13 + SALT_LEN)) };
}

/**
 * Opens a sealed file with keys derived for its header (see `readHeader`). Returns the body
 * bytes; the caller wipes them after parsing.
 */
export function unseal(file: Uint8Array, keys: DerivedKeys): Buffer {
  const buf = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  const head = buf.subarray(0, CHECKED_PREFIX);
  const expected = createHmac('sha256', keys.checkKey).update(head).digest();
  if (!timingSafeEqual(expected, buf.subarray(CHECKED_PREFIX, CHECKED_PREFIX + CHECK_LEN))) {
    throw localError('AccessDenied', 'wrong passphrase for this keystore');
  }
  const iv = buf.subarray(CHECKED_PREFIX + CHECK_LEN, CHECKED_PREFIX + CHECK_LEN + IV_LEN);
  const tagAt = buf.length - DIGEST_LEN - TAG_LEN;
  const decipher = createDecipheriv('aes-256-gcm', keys.bodyKey, iv);
  decipher.setAAD(buf.subarray(0, HEADER_LEN));
  decipher.setAuthTag(buf.subarray(tagAt, tagAt + TAG_LEN));
  const body = decipher.update(buf.subarray(HEADER_LEN, tagAt));
  try {
    decipher.final();
  } catch {
    body.fill(0);
    damaged('authentication failed');
  }
  return body;
}

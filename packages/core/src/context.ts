import { createHash, createHmac } from 'node:crypto';
import { KeyportError } from './errors.js';
import { nullRecord } from './null-record.js';
import { secretKey } from './secret-key.js';
import { type ContextInput, toEncryptionContext } from './validate.js';

const utf8 = new TextEncoder();

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

const isSurrogate = (unit: number): boolean => unit >= 0xd800 && unit <= 0xdfff;

/**
 * Orders well-formed strings as their UTF-8 bytes order (code point order), without encoding
 * them. UTF-16 order differs from it only where one string has a surrogate and the other a unit
 * in U+E000..U+FFFF at the first difference: the surrogate stands for a code point above U+FFFF.
 */
function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) {
      const xs = isSurrogate(x);
      return xs === isSurrogate(y) ? x - y : xs ? 1 : -1;
    }
  }
  return a.length - b.length;
}

/** UTF-8 length of a well-formed string (a surrogate pair is 4 bytes). */
function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    n += c < 0x800 ? 1 : 2;
    if (c >= 0xd800 && c <= 0xdbff) i++; // the pair's two units already count 2 of its 4 bytes
  }
  return n;
}

/** The context's keys, checked, in UTF-8 byte order, with the checked context. */
function sortedKeys(context: ContextInput): { checked: Record<string, string>; keys: string[] } {
  const checked = toEncryptionContext(context);
  const keys = Object.keys(checked);
  if (keys.length > 1) keys.sort(compareUtf8);
  return { checked, keys };
}

/**
 * Checks a context (plain object or Map of strings, see `toEncryptionContext`) and returns its
 * pairs as UTF-8 bytes sorted by key bytes. Errors name the offending pair's position, never a value.
 */
export function contextEntries(context: ContextInput | undefined): Array<[Uint8Array, Uint8Array]> {
  if (context === undefined) return [];
  const { checked, keys } = sortedKeys(context);
  return keys.map((key) => [utf8.encode(key), utf8.encode(checked[key] as string)]);
}

function writeU32(out: Uint8Array, at: number, n: number): void {
  out[at] = n >>> 24;
  out[at + 1] = (n >>> 16) & 0xff;
  out[at + 2] = (n >>> 8) & 0xff;
  out[at + 3] = n & 0xff;
}

/**
 * Writes `u32be length || s` at `at` (`length`: the UTF-8 length of `s`) and returns the offset
 * after it; ASCII byte by byte, anything else by the encoder.
 */
function writeField(out: Uint8Array, at: number, s: string, length: number): number {
  writeU32(out, at, length);
  const from = at + 4;
  if (length === s.length) {
    for (let i = 0; i < length; i++) out[from + i] = s.charCodeAt(i);
  } else {
    utf8.encodeInto(s, out.subarray(from, from + length));
  }
  return from + length;
}

/**
 * The canonical byte encoding of a context, for providers whose AAD is just bytes.
 *
 * Empty context -> zero bytes (so an unbound call and an empty context agree). Otherwise:
 * `u32be count`, then for each pair sorted by the key's UTF-8 bytes: `u32be keyLen, key,
 * u32be valueLen, value`. Length prefixes make the encoding injective: no two different
 * contexts share an encoding, so a context cannot be forged by moving bytes between pairs.
 *
 * Drivers encode the context on every call, so no string is encoded twice: keys are sorted as
 * strings (in UTF-8 byte order) and each string is written straight into the result.
 */
export function encodeContext(context: ContextInput | undefined): Uint8Array {
  if (context === undefined) return new Uint8Array(0);
  const { checked, keys } = sortedKeys(context);
  if (keys.length === 0) return new Uint8Array(0);
  const lengths = new Array<number>(keys.length * 2);
  let size = 4;
  for (let i = 0; i < keys.length; i++) {
    const k = utf8Length(keys[i] as string);
    const v = utf8Length(checked[keys[i] as string] as string);
    lengths[2 * i] = k;
    lengths[2 * i + 1] = v;
    size += 8 + k + v;
  }
  const out = new Uint8Array(size);
  writeU32(out, 0, keys.length);
  let at = 4;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    at = writeField(out, at, key, lengths[2 * i] as number);
    at = writeField(out, at, checked[key] as string, lengths[2 * i + 1] as number);
  }
  return out;
}

/** Inverse of encodeContext; rejects anything that is not exactly a canonical encoding. */
export function decodeContext(bytes: Uint8Array): Record<string, string> {
  const out = nullRecord<string>();
  if (bytes.length === 0) return out;
  const bad = (): never => {
    throw new KeyportError('InvalidArgument', 'not a canonical encryption context encoding');
  };
  if (bytes.length < 4) bad();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const count = view.getUint32(0);
  if (count === 0) bad();
  let at = 4;
  let previous: Uint8Array | undefined;
  const read = (): Uint8Array => {
    if (at + 4 > bytes.length) bad();
    const len = view.getUint32(at);
    if (at + 4 + len > bytes.length) bad();
    const slice = bytes.subarray(at + 4, at + 4 + len);
    at += 4 + len;
    return slice;
  };
  for (let i = 0; i < count; i++) {
    const k = read();
    const v = read();
    if (k.length === 0 || (previous !== undefined && compareBytes(previous, k) >= 0)) bad();
    previous = k;
    try {
      // defineProperty, not assignment: a key named "__proto__" must stay an ordinary pair.
      Object.defineProperty(out, decoder.decode(k), {
        value: decoder.decode(v),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } catch {
      bad();
    }
  }
  if (at !== bytes.length) bad();
  return out;
}

/** The context's keys, sorted: what audit records may show. */
export function contextKeys(context: ContextInput | undefined): string[] {
  return context === undefined ? [] : Object.keys(toEncryptionContext(context)).sort();
}

/**
 * A digest of the whole context for audit, so two events can be compared without storing
 * values. With a secret `key` it is an HMAC, which resists guessing low-entropy values.
 */
export function contextDigest(context: ContextInput | undefined, key?: Uint8Array): string {
  const encoded = encodeContext(context);
  const h = key === undefined ? createHash('sha256') : createHmac('sha256', secretKey(key));
  return h.update(encoded).digest('hex');
}

/** True when `context` carries every pair of `required` with equal values. */
export function contextContains(context: ContextInput | undefined, required: ContextInput): boolean {
  const have = context === undefined ? undefined : toEncryptionContext(context);
  for (const [k, v] of Object.entries(toEncryptionContext(required, 'required'))) {
    if (have === undefined || !Object.hasOwn(have, k) || have[k] !== v) return false;
  }
  return true;
}

/** True when both contexts hold exactly the same pairs. */
export function contextEquals(a: ContextInput | undefined, b: ContextInput | undefined): boolean {
  const ka = contextKeys(a);
  const kb = contextKeys(b);
  return ka.length === kb.length && contextContains(a, b ?? {});
}

import { createHash, createHmac } from 'node:crypto';
import { KeyportError } from './errors.js';
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

/**
 * Checks a context (plain object or Map of strings, see `toEncryptionContext`) and returns its
 * pairs as UTF-8 bytes sorted by key bytes. Errors name the offending pair's position, never a value.
 */
export function contextEntries(context: ContextInput | undefined): Array<[Uint8Array, Uint8Array]> {
  if (context === undefined) return [];
  const entries: Array<[Uint8Array, Uint8Array]> = [];
  for (const [key, value] of Object.entries(toEncryptionContext(context))) {
    entries.push([utf8.encode(key), utf8.encode(value)]);
  }
  return entries.sort((a, b) => compareBytes(a[0], b[0]));
}

/**
 * The canonical byte encoding of a context, for providers whose AAD is just bytes.
 *
 * Empty context -> zero bytes (so an unbound call and an empty context agree). Otherwise:
 * `u32be count`, then for each pair sorted by the key's UTF-8 bytes: `u32be keyLen, key,
 * u32be valueLen, value`. Length prefixes make the encoding injective: no two different
 * contexts share an encoding, so a context cannot be forged by moving bytes between pairs.
 */
export function encodeContext(context: ContextInput | undefined): Uint8Array {
  const entries = contextEntries(context);
  if (entries.length === 0) return new Uint8Array(0);
  let size = 4;
  for (const [k, v] of entries) size += 8 + k.length + v.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, entries.length);
  let at = 4;
  for (const [k, v] of entries) {
    view.setUint32(at, k.length);
    out.set(k, at + 4);
    at += 4 + k.length;
    view.setUint32(at, v.length);
    out.set(v, at + 4);
    at += 4 + v.length;
  }
  return out;
}

/** Inverse of encodeContext; rejects anything that is not exactly a canonical encoding. */
export function decodeContext(bytes: Uint8Array): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
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
  const h = key === undefined ? createHash('sha256') : createHmac('sha256', key);
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

import { createHash, createHmac } from 'node:crypto';
import { KeyportError } from './errors.js';
import type { EncryptionContext } from './types.js';

const utf8 = new TextEncoder();

/** Lone surrogates cannot be encoded as UTF-8 and would make two contexts encode alike. */
function isWellFormed(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return false;
    }
  }
  return true;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/**
 * Checks a context and returns its pairs as UTF-8 bytes sorted by key bytes.
 * Errors name the offending key's position, never a value.
 */
export function contextEntries(context: EncryptionContext | undefined): Array<[Uint8Array, Uint8Array]> {
  if (context === undefined) return [];
  if (context === null || typeof context !== 'object' || Array.isArray(context)) {
    throw new KeyportError('InvalidArgument', 'encryption context must be an object of string pairs');
  }
  const entries: Array<[Uint8Array, Uint8Array]> = [];
  let index = 0;
  for (const [key, value] of Object.entries(context)) {
    if (key.length === 0)
      throw new KeyportError('InvalidArgument', 'encryption context keys must not be empty');
    if (typeof value !== 'string') {
      throw new KeyportError('InvalidArgument', `encryption context value #${index} is not a string`);
    }
    if (!isWellFormed(key) || !isWellFormed(value)) {
      throw new KeyportError(
        'InvalidArgument',
        `encryption context pair #${index} is not well-formed Unicode`,
      );
    }
    entries.push([utf8.encode(key), utf8.encode(value)]);
    index++;
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
export function encodeContext(context: EncryptionContext | undefined): Uint8Array {
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
  const out: Record<string, string> = {};
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
export function contextKeys(context: EncryptionContext | undefined): string[] {
  return context === undefined ? [] : Object.keys(context).sort();
}

/**
 * A digest of the whole context for audit, so two events can be compared without storing
 * values. With a secret `key` it is an HMAC, which resists guessing low-entropy values.
 */
export function contextDigest(context: EncryptionContext | undefined, key?: Uint8Array): string {
  const encoded = encodeContext(context);
  const h = key === undefined ? createHash('sha256') : createHmac('sha256', key);
  return h.update(encoded).digest('hex');
}

/** True when `context` carries every pair of `required` with equal values. */
export function contextContains(
  context: EncryptionContext | undefined,
  required: EncryptionContext,
): boolean {
  for (const [k, v] of Object.entries(required)) {
    if (context === undefined || !Object.hasOwn(context, k) || context[k] !== v) return false;
  }
  return true;
}

/** True when both contexts hold exactly the same pairs. */
export function contextEquals(a: EncryptionContext | undefined, b: EncryptionContext | undefined): boolean {
  const ka = contextKeys(a);
  const kb = contextKeys(b);
  return ka.length === kb.length && contextContains(a, b ?? {});
}

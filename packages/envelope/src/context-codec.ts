/**
 * The ESDK encryption-context serialization (structures.md "Serialization"): empty context ->
 * zero bytes; otherwise u16 pair count, then per pair (sorted by the key's UTF-8 bytes)
 * u16 key length, key, u16 value length, value. Used in the header AAD field and as the raw
 * AES keyring's AAD.
 */
import { contextEntries, type EncryptionContext } from '@keyport/core';
import { ByteReader, ByteWriter, invalidCiphertext, NeedMoreBytes, utf8Decode } from './bytes.js';

export function serializeContext(context: EncryptionContext | undefined): Uint8Array {
  const entries = contextEntries(context);
  if (entries.length === 0) return new Uint8Array(0);
  const w = new ByteWriter().u16(entries.length);
  for (const [k, v] of entries) w.short(k).short(v);
  return w.finish();
}

/** Parses a serialized context exactly; duplicates, empty counts and trailing bytes are refused. */
export function parseContext(bytes: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  if (bytes.length === 0) return out;
  const r = new ByteReader(bytes);
  try {
    const count = r.u16();
    if (count === 0) throw invalidCiphertext('encryption context with a zero pair count');
    for (let i = 0; i < count; i++) {
      const key = utf8Decode(r.take(r.u16()));
      const value = utf8Decode(r.take(r.u16()));
      if (Object.hasOwn(out, key)) throw invalidCiphertext('duplicate key in the encryption context');
      // defineProperty: a key named "__proto__" must stay an ordinary pair.
      Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
    }
  } catch (e) {
    if (e instanceof NeedMoreBytes) throw invalidCiphertext('encryption context is truncated');
    throw e;
  }
  if (r.remaining !== 0) throw invalidCiphertext('trailing bytes after the encryption context');
  return out;
}

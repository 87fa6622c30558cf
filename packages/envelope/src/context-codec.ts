/**
 * The ESDK encryption-context serialization (structures.md "Serialization"): empty context ->
 * zero bytes; otherwise u16 pair count, then per pair (sorted by the key's UTF-8 bytes)
 * u16 key length, key, u16 value length, value. Used in the header AAD field and as the raw
 * AES keyring's AAD.
 */
import { contextEntries, type EncryptionContext, toMessageContext } from '@keyport/core';
import { ByteReader, ByteWriter, invalidCiphertext, NeedMoreBytes, utf8Decode } from './bytes.js';

type Entries = Array<[Uint8Array, Uint8Array]>;

function serializeEntries(entries: Entries): Uint8Array {
  if (entries.length === 0) return new Uint8Array(0);
  const w = new ByteWriter().u16(entries.length);
  for (const [k, v] of entries) w.short(k).short(v);
  return w.finish();
}

/** A caller's context (seal, wrap), checked by core's rules: keys are never empty. */
export function serializeContext(context: EncryptionContext | undefined): Uint8Array {
  return serializeEntries(contextEntries(context));
}

/**
 * The pairs of a context read from a message (unwrap on open, a rewrap's new EDKs), sorted as
 * `contextEntries` sorts: an empty key is allowed here. The format allows any UTF-8 text
 * (structures.md), and ESDK-JS, -Python and -Go seal and open `{ "": value }`; core's rule refuses
 * an empty key from a caller, which is keyport's choice for what it seals, not a reason to refuse
 * what others sealed: core's `toMessageContext` checks such a context by the same rules but that
 * one. An empty key sorts first.
 */
function openedEntries(context: EncryptionContext | undefined): Entries {
  return contextEntries(context === undefined ? undefined : toMessageContext(context));
}

/** `serializeContext` for a context read from a message: see `openedEntries`. */
export function serializeOpenedContext(context: EncryptionContext | undefined): Uint8Array {
  return serializeEntries(openedEntries(context));
}

/**
 * The context as ESDK-JS's raw AES keyring serializes it by default (`utf8Sorting` unset,
 * still the default in 5.0.2, kept for its old messages; aws-encryption-sdk-javascript#428):
 * pairs sorted by `String.prototype.localeCompare` of the keys instead of their UTF-8 bytes.
 * The orders differ as soon as keys mix cases (`Tenant` and `app`) or use non-ASCII letters,
 * and then the wrapped data key's AAD differs. Returns undefined when both orders agree.
 */
export function serializeContextEsdkJsLegacy(context: EncryptionContext | undefined): Uint8Array | undefined {
  const entries = openedEntries(context);
  if (entries.length < 2) return undefined;
  const decoder = new TextDecoder();
  const legacy = entries
    .map(([k, v]) => ({ key: decoder.decode(k), k, v }))
    .sort((a, b) => a.key.localeCompare(b.key));
  if (legacy.every((e, i) => e.k === entries[i]?.[0])) return undefined;
  return serializeEntries(legacy.map(({ k, v }) => [k, v]));
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

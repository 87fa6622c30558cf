/**
 * Context pairs a message authenticates without storing them (the ESDK's "required encryption
 * context keys", written by its Required Encryption Context CMM). The header keeps the other
 * pairs; the unstored ones are bound to every EDK (each wrap sees the whole context) and to the
 * header's tag, whose AAD is the header body followed by those pairs serialized as a context
 * (client-apis/encrypt.md, decrypt.md). Opening such a message needs the caller to reproduce
 * them (the ESDK decrypt's encryption context): see `completeContext`.
 */
import { type EncryptionContext, KeyportError, quote, toEncryptionContext } from '@keyport/core';
import { invalidCiphertext } from './bytes.js';
import { serializeContext } from './context-codec.js';
import { RESERVED_CONTEXT_PREFIX } from './suites.js';

export interface CompletedContext {
  /** The message's context with the reproduced pairs it did not store. */
  readonly context: Readonly<Record<string, string>>;
  /** Those added pairs serialized (empty when none): what the header's tag covers after the body. */
  readonly authenticatedOnly: Uint8Array;
}

/** No unstored pairs (shared: it has no byte to write, and every seal and open would make one). */
const NONE = new Uint8Array(0);

/**
 * Completes a header's `stored` context with the caller's `reproduced` one, as the ESDK's
 * default CMM does on decrypt: a key in both must have the same value (else the message is not
 * the one the caller means: InvalidCiphertext, naming the key's position, never a value); a key
 * only in `reproduced` is added, to be proved by the EDK unwrap and the header's tag (a pair the
 * sealer never bound fails there, like a tampered header). Reserved `aws-crypto-` keys cannot be
 * added this way (the signature key must come from the message).
 */
export function completeContext(
  stored: Readonly<Record<string, string>>,
  reproduced: unknown,
): CompletedContext {
  if (reproduced === undefined) return { context: stored, authenticatedOnly: NONE };
  const given = toEncryptionContext(reproduced, 'reproducedContext');
  const added: Record<string, string> = {};
  let addedAny = false;
  let index = 0;
  for (const [key, value] of Object.entries(given)) {
    if (Object.hasOwn(stored, key)) {
      if (stored[key] !== value) {
        throw invalidCiphertext(
          `reproducedContext pair #${index} differs from the pair the message stores under that key`,
        );
      }
    } else if (key.startsWith(RESERVED_CONTEXT_PREFIX)) {
      throw new KeyportError(
        'InvalidArgument',
        `reproducedContext: keys starting with "${RESERVED_CONTEXT_PREFIX}" come from the message only (got ${quote(key)})`,
      );
    } else {
      Object.defineProperty(added, key, { value, enumerable: true, writable: true, configurable: true });
      addedAny = true;
    }
    index++;
  }
  if (!addedAny) return { context: stored, authenticatedOnly: NONE };
  const context: Record<string, string> = {};
  for (const source of [stored, added]) {
    for (const [key, value] of Object.entries(source)) {
      // defineProperty: a key named "__proto__" must stay an ordinary pair.
      Object.defineProperty(context, key, { value, enumerable: true, writable: true, configurable: true });
    }
  }
  return { context, authenticatedOnly: serializeContext(added as EncryptionContext) };
}

export interface SplitContext {
  /** The pairs the header stores. */
  readonly stored: EncryptionContext;
  /** The pairs named in `notStored`, serialized: the header tag's extra AAD. */
  readonly authenticatedOnly: Uint8Array;
}

/**
 * Splits a seal's `context` for `contextNotStored` (the ESDK's required encryption context
 * keys): each named key must be one of the context's; those pairs leave the header and are
 * authenticated only, so the opener must reproduce them (`reproducedContext`). Undefined when
 * no key is named: the whole context is stored.
 */
export function splitContext(context: EncryptionContext, notStored: unknown): SplitContext | undefined {
  if (notStored === undefined) return undefined;
  if (!Array.isArray(notStored)) {
    throw new KeyportError('InvalidArgument', 'contextNotStored must be an array of context keys');
  }
  const all = toEncryptionContext(context, 'context');
  const names = new Set<string>();
  for (let i = 0; i < notStored.length; i++) {
    const key: unknown = notStored[i];
    if (typeof key !== 'string' || !Object.hasOwn(all, key)) {
      throw new KeyportError(
        'InvalidArgument',
        `contextNotStored[${i}] must name a key of the context (got ${quote(key)})`,
      );
    }
    names.add(key);
  }
  if (names.size === 0) return undefined;
  const stored: Record<string, string> = {};
  const only: Record<string, string> = {};
  for (const [key, value] of Object.entries(all)) {
    // defineProperty: a key named "__proto__" must stay an ordinary pair.
    Object.defineProperty(names.has(key) ? only : stored, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return { stored, authenticatedOnly: serializeContext(only) };
}

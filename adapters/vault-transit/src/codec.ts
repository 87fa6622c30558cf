/**
 * Wire encodings: transit's `vault:v<N>:<base64>` strings, base64 payloads, and the encryption
 * context as `associated_data` (base64 of core's canonical context encoding, so the same
 * context always gives the same AAD bytes and a grant policy can pin the exact value).
 */
import { type EncryptionContext, encodeContext, KeyportError } from '@keyport/core';

const PREFIXED = /^vault:v([1-9][0-9]*):([A-Za-z0-9+/=]*)$/;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

export function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

export function unb64(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'base64'));
}

/** `associated_data` for a context, or undefined when there is none to bind. */
export function associatedData(context: EncryptionContext | undefined): string | undefined {
  const encoded = encodeContext(context);
  return encoded.length === 0 ? undefined : b64(encoded);
}

export interface Prefixed {
  readonly version: string;
  readonly body: string;
}

/** Splits `vault:vN:...`; throws `code` (InvalidCiphertext by default) when it is not one. */
export function parsePrefixed(text: string, what = 'ciphertext'): Prefixed {
  const m = PREFIXED.exec(text);
  if (m === null) throw new KeyportError('InvalidCiphertext', `not a transit ${what} (vault:v<N>:...)`);
  return { version: m[1] as string, body: m[2] as string };
}

/** keyport ciphertext bytes are the UTF-8 of transit's `vault:vN:...` string. */
export function ciphertextBytes(text: string): Uint8Array {
  parsePrefixed(text);
  return utf8.encode(text);
}

export function ciphertextText(bytes: Uint8Array): string {
  let text: string;
  try {
    text = fromUtf8.decode(bytes);
  } catch {
    throw new KeyportError('InvalidCiphertext', 'not a transit ciphertext (not UTF-8)');
  }
  parsePrefixed(text);
  return text;
}

/** Signatures and MACs are returned raw (DER / raw RSA / raw HMAC), without the prefix. */
export function rawFromPrefixed(text: string, what: string): { bytes: Uint8Array; version: string } {
  const p = parsePrefixed(text, what);
  return { bytes: unb64(p.body), version: p.version };
}

export function prefixed(version: string | number, bytes: Uint8Array): string {
  return `vault:v${version}:${b64(bytes)}`;
}

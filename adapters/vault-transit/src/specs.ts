/**
 * Transit's vocabulary in keyport's terms: key types <-> key specs, signing parameters, a key read
 * -> KeyInfo, and the wire encodings (`vault:v<N>:<base64>` strings; the encryption context as
 * `associated_data`, base64 of core's canonical encoding, so a grant policy can pin one exact
 * value). Core has no key spec for chacha20-poly1305 or ed25519 keys: they are made with
 * `createTransitKey`, chacha20 keys encrypt through the portable calls, and describing either is
 * refused rather than reported under a spec that is not true.
 */
import {
  type EncryptionContext,
  encodeContext,
  type KeyInfo,
  KeyportError,
  type KeySpec,
  type KeyUsage,
  type KeyVersionInfo,
  type SigningAlgorithm,
  takeSecretBytes,
  USAGES_BY_SPEC,
} from '@keyport/core';
import { type KeyLocation, keyUriOf } from './uri.js';

export const TYPE_BY_SPEC = {
  AES_256: 'aes256-gcm96',
  RSA_2048: 'rsa-2048',
  RSA_3072: 'rsa-3072',
  RSA_4096: 'rsa-4096',
  EC_P256: 'ecdsa-p256',
  EC_P384: 'ecdsa-p384',
  HMAC_256: 'hmac',
} as const satisfies Record<KeySpec, string>;

/** Every transit key type: those of a keyport spec, and two core has no spec for. */
export const TRANSIT_KEY_TYPES = [...Object.values(TYPE_BY_SPEC), 'chacha20-poly1305', 'ed25519'] as const;
export type TransitKeyType = (typeof TRANSIT_KEY_TYPES)[number];

export function specOfType(type: string): KeySpec | undefined {
  return (Object.keys(TYPE_BY_SPEC) as KeySpec[]).find((spec) => TYPE_BY_SPEC[spec] === type);
}

/** Transit's sign/verify parameters per algorithm. PSS salt = hash length, as every verifier expects. */
export const SIGN_PARAMS: Readonly<Partial<Record<SigningAlgorithm, Record<string, string>>>> = {
  RSASSA_PSS_SHA_256: { hash_algorithm: 'sha2-256', signature_algorithm: 'pss', salt_length: 'hash' },
  RSASSA_PKCS1_V1_5_SHA_256: { hash_algorithm: 'sha2-256', signature_algorithm: 'pkcs1v15' },
  ECDSA_SHA_256: { hash_algorithm: 'sha2-256', marshaling_algorithm: 'asn1' },
  ECDSA_SHA_384: { hash_algorithm: 'sha2-384', marshaling_algorithm: 'asn1' },
};

/** The fields of `GET <mount>/keys/<name>` keyport reads. */
export interface TransitKeyData {
  readonly name: string;
  readonly type: string;
  /** Absent for hmac keys. */
  readonly keys?: Record<string, number | { creation_time?: string; public_key?: string; name?: string }>;
  readonly latest_version: number;
  readonly min_decryption_version: number;
  readonly min_encryption_version: number;
  readonly min_available_version: number;
  readonly auto_rotate_period?: number;
  readonly deletion_allowed?: boolean;
  readonly derived?: boolean;
  readonly exportable?: boolean;
  readonly imported_key?: boolean;
  readonly soft_deleted?: boolean;
}

/**
 * The lowest `auto_rotate_period` (seconds) of keyport's creation marker (200 years; see
 * `createTransitKey`): above any period keyport sets (at most 36,500 days). A key still carrying
 * one was cut off between the two requests of its creation, or is being created right now.
 */
export const CREATION_MARKER_SECONDS = 200 * 365 * 86_400;

/** Whether the key still carries a creation marker instead of the rotation period asked for. */
export const carriesCreationMarker = (data: Pick<TransitKeyData, 'auto_rotate_period'>): boolean =>
  typeof data.auto_rotate_period === 'number' && data.auto_rotate_period >= CREATION_MARKER_SECONDS;

/** What keyport keeps beside a transit key (transit has no place for it). */
export interface KeyInfoExtras {
  readonly usage?: KeyUsage | undefined;
  readonly labels?: Readonly<Record<string, string>> | undefined;
  readonly description?: string | undefined;
}

/** A version's creation time; undefined when the server gave none that is a date. */
function createdAt(entry: NonNullable<TransitKeyData['keys']>[string] | undefined): Date | undefined {
  const at =
    typeof entry === 'number'
      ? new Date(entry * 1000)
      : typeof entry === 'object' && entry !== null && typeof entry.creation_time === 'string'
        ? new Date(entry.creation_time)
        : undefined;
  return at === undefined || Number.isNaN(at.getTime()) ? undefined : at;
}

/** The KeyInfo fields kept beside the key; labels prototype-free (a `__proto__` label is a label). */
export const extraFields = (extras: KeyInfoExtras) => ({
  labels: Object.assign(Object.setPrototypeOf({}, null) as Record<string, string>, extras.labels),
  ...(extras.description !== undefined ? { description: extras.description } : {}),
});

/** KeyInfo for a key whose spec core can name; undefined for chacha20 / ed25519 keys. */
export function toKeyInfo(
  loc: KeyLocation,
  data: TransitKeyData,
  extras: KeyInfoExtras = {},
): KeyInfo | undefined {
  const spec = specOfType(data.type);
  if (spec === undefined) return undefined;
  const usages = USAGES_BY_SPEC[spec];
  const usage =
    extras.usage !== undefined && usages.includes(extras.usage) ? extras.usage : (usages[0] as KeyUsage);
  const minAvailable = Math.max(data.min_available_version, 1);
  const versions: KeyVersionInfo[] = [];
  for (let v = 1; v <= data.latest_version; v++) {
    const at = createdAt(data.keys !== undefined && Object.hasOwn(data.keys, v) ? data.keys[v] : undefined);
    const state = v < minAvailable ? 'destroyed' : v < data.min_decryption_version ? 'disabled' : 'enabled';
    versions.push({ version: String(v), state, ...(at !== undefined ? { createdAt: at } : {}) });
  }
  const first = createdAt(
    data.keys !== undefined && Object.hasOwn(data.keys, minAvailable) ? data.keys[minAvailable] : undefined,
  );
  // A creation marker is no period anyone asked for: it is never presented as one.
  const period = carriesCreationMarker(data) ? 0 : (data.auto_rotate_period ?? 0);
  return {
    uri: keyUriOf(loc),
    spec,
    usage,
    state: data.soft_deleted === true ? 'disabled' : 'enabled',
    ...(first !== undefined && minAvailable === 1 ? { createdAt: first } : {}),
    primaryVersion: String(data.latest_version),
    versions,
    ...extraFields(extras),
    ...(period > 0 ? { rotation: { periodDays: period / 86_400 } } : {}),
    origin: data.imported_key === true ? 'external' : 'provider',
  };
}

// ---------------------------------------------------------------- wire encodings

const PREFIXED = /^vault:v([1-9][0-9]*):([A-Za-z0-9+/=]*)$/;
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

export const b64 = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
/** Base64 to bytes of their own, the decode wiped (see core's takeSecretBytes). */
export const unb64 = (text: string): Uint8Array => takeSecretBytes(Buffer.from(text, 'base64'));

/** `associated_data` for a context, or undefined when there is none to bind. */
export function associatedData(context: EncryptionContext | undefined): string | undefined {
  const encoded = encodeContext(context);
  return encoded.length === 0 ? undefined : b64(encoded);
}

/** Splits `vault:vN:...`; InvalidCiphertext when it is not one. */
export function parsePrefixed(text: string, what = 'ciphertext'): { version: string; body: string } {
  const m = PREFIXED.exec(text);
  if (m === null) throw new KeyportError('InvalidCiphertext', `not a transit ${what} (vault:v<N>:...)`);
  return { version: m[1] as string, body: m[2] as string };
}

/** keyport ciphertext bytes are the UTF-8 of transit's `vault:vN:...` string. */
export function ciphertextBytes(text: string): Uint8Array {
  parsePrefixed(text);
  return new TextEncoder().encode(text);
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

export const prefixed = (version: string | number, bytes: Uint8Array): string =>
  `vault:v${version}:${b64(bytes)}`;

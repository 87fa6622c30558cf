/**
 * BYOK: transit's import protocol. `GET <mount>/wrapping_key` gives an RSA-4096 public key; the
 * material is sent as RSA-OAEP(ephemeral AES-256 key) || AES-KWP(ephemeral, material) (RFC 5649),
 * the OAEP hash named by `hash_function`: core's `RSA_AES_KEY_WRAP_SHA_256` (SHA256) and
 * `RSA_AES_KEY_WRAP_SHA_1` (SHA1, for HSMs whose C_WrapKey does OAEP with SHA-1 only, such as
 * SoftHSM2 2.6.1; in OAEP the hash serves the padding, not collision resistance). Material is
 * the raw key for AES and HMAC keys and PKCS#8 DER for RSA / EC keys.
 *
 * Transit has no key without material, so `createKey({ external: true })` creates nothing on the
 * server: the driver remembers the spec (state `pending_import`) until `importKeyMaterial`
 * creates the key with `keys/<name>/import`; an imported key takes more material as a new
 * version (`import_version`).
 */
import {
  constants,
  createCipheriv,
  createPublicKey,
  type KeyObject,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import {
  type ImportKeyMaterialRequest,
  type ImportParametersRequest,
  type ImportWrappingAlgorithm,
  KeyportError,
  keyportError,
  type ProviderCallOptions,
} from '@keyport/core';
import { malformedAnswer, PROVIDER_NAME } from './errors.js';
import { describe, type KeyTarget, readKey } from './keys.js';
import { b64, TYPE_BY_SPEC } from './specs.js';
import { keyId, keyPath } from './uri.js';

type Call = ProviderCallOptions;
type ErrorCode = 'Unsupported' | 'InvalidArgument';

const KWP_IV = Buffer.from('a65959a6', 'hex');

/** The wrapping algorithms transit imports with, and the `hash_function` each one sends. */
export const TRANSIT_IMPORT_HASH = {
  RSA_AES_KEY_WRAP_SHA_256: { hashFunction: 'SHA256', oaepHash: 'sha256' },
  RSA_AES_KEY_WRAP_SHA_1: { hashFunction: 'SHA1', oaepHash: 'sha1' },
} as const;
export type TransitImportAlgorithm = keyof typeof TRANSIT_IMPORT_HASH;

/**
 * The algorithm's hashes. Core refuses undeclared algorithms for import parameters; a driver called
 * directly may still be asked for one, and material wrapped otherwise is a bad argument.
 */
function hashesFor(algorithm: ImportWrappingAlgorithm, keyUri: string, code: ErrorCode) {
  if (Object.hasOwn(TRANSIT_IMPORT_HASH, algorithm)) {
    return TRANSIT_IMPORT_HASH[algorithm as TransitImportAlgorithm];
  }
  const why = `transit imports with ${Object.keys(TRANSIT_IMPORT_HASH).join(' or ')} only (not ${algorithm})`;
  throw keyportError(code, why, { keyUri, capability: 'import' });
}

const generated = (keyUri: string) =>
  new KeyportError('KeyStateConflict', 'the key holds provider-generated material and takes no import', {
    provider: PROVIDER_NAME,
    keyUri,
  });

/**
 * The mount's wrapping key (the same for both algorithms: only the OAEP hash differs). Only a
 * pending key or one that was imported takes material (as a new version); generated keys never do.
 */
export async function getImportParameters(
  t: KeyTarget,
  { algorithm = 'RSA_AES_KEY_WRAP_SHA_256' }: ImportParametersRequest,
  { signal }: Call,
) {
  const { key } = t;
  hashesFor(algorithm, key.uri, 'Unsupported');
  if (!t.pending.has(keyId(key)) && (await readKey(t.s, key, signal)).imported_key !== true) {
    throw generated(key.uri);
  }
  const r = await t.s.read<{ data?: { public_key?: unknown } } | null>(signal, `${key.mount}/wrapping_key`);
  const pem = r?.data?.public_key;
  // Transit's wrapping key is RSA-4096: anything else is not the key the protocol wraps under.
  const wrapping = typeof pem === 'string' ? rsaPublicKey(pem) : undefined;
  if (wrapping === undefined) {
    throw malformedAnswer('the wrapping key read without an RSA public key in data.public_key', key.uri);
  }
  const der = wrapping.export({ type: 'spki', format: 'der' });
  return { keyUri: key.uri, algorithm, wrappingPublicKey: new Uint8Array(der) };
}

function rsaPublicKey(pem: string): KeyObject | undefined {
  try {
    const k = createPublicKey(pem);
    return k.asymmetricKeyType === 'rsa' ? k : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Wraps key material for transit import (what an HSM-side tool would do), for callers without
 * such a tool who hold the material locally; the material goes nowhere else.
 */
export function wrapForImport(
  wrappingPublicKey: Uint8Array,
  material: Uint8Array,
  algorithm: TransitImportAlgorithm = 'RSA_AES_KEY_WRAP_SHA_256',
): Uint8Array {
  const ephemeral = randomBytes(32);
  try {
    const key = createPublicKey({ key: Buffer.from(wrappingPublicKey), format: 'der', type: 'spki' });
    const padding = constants.RSA_PKCS1_OAEP_PADDING;
    const oaepHash = TRANSIT_IMPORT_HASH[algorithm].oaepHash;
    const wrappedKey = publicEncrypt({ key, padding, oaepHash }, ephemeral);
    const kwp = createCipheriv('id-aes256-wrap-pad', ephemeral, KWP_IV);
    return new Uint8Array(Buffer.concat([wrappedKey, kwp.update(material), kwp.final()]));
  } finally {
    ephemeral.fill(0);
  }
}

/** Creates the pending key from the material, or adds a version to an imported key. */
export async function importKeyMaterial(t: KeyTarget, req: ImportKeyMaterialRequest, { signal }: Call) {
  const { key } = t;
  const hash_function = hashesFor(req.algorithm, key.uri, 'InvalidArgument').hashFunction;
  if (req.expiresAt !== undefined) {
    throw new KeyportError('InvalidArgument', 'transit imported material cannot expire', { keyUri: key.uri });
  }
  const spec = t.pending.get(keyId(key));
  // Only a key that was imported takes more material; asked first, so that a generated key
  // answers KeyStateConflict and a missing one NotFound (transit answers both with a 500).
  if (spec === undefined && (await readKey(t.s, key, signal)).imported_key !== true) throw generated(key.uri);
  const ciphertext = b64(req.wrappedMaterial);
  // A pending key is created from the material; later material arrives as versions (import_version).
  const created = spec && { type: TYPE_BY_SPEC[spec], exportable: false, allow_plaintext_backup: false };
  const body = { ciphertext, hash_function, ...(created && { ...created, allow_rotation: false }) };
  await t.s.write(signal, keyPath(key, created ? '/import' : '/import_version'), body);
  t.pending.delete(keyId(key));
  return describe(t, key, signal);
}

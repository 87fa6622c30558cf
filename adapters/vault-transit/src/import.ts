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
 * creates the key with `keys/<name>/import`, or the server is seen holding the key (an import
 * whose answer was lost); an imported key takes more material as a new version (`import_version`).
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
import { malformedAnswer, mapVaultError, PROVIDER_NAME } from './errors.js';
import { describe, type KeyTarget, readKey, tryReadKey } from './keys.js';
import { b64, type TransitKeyData, TYPE_BY_SPEC } from './specs.js';
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
  try {
    await t.s.write(signal, keyPath(key, created ? '/import' : '/import_version'), body);
  } catch (error) {
    throw created ? await creatingImportFailed(t, error, signal) : error;
  }
  t.pending.delete(keyId(key));
  return describe(t, key, signal);
}

/** Codes whose failure leaves unknown whether the server acted (no answer, or no readable one). */
const AMBIGUOUS: ReadonlySet<string> = new Set(['Unavailable', 'Timeout', 'Internal', 'Aborted']);

/**
 * The error of a failed import into a pending key, once the server was asked whether the key
 * exists now. Transit makes the key from the material, so a key that exists after the request
 * left says more than the failure does:
 *
 * - refused as existing (transit's 500 "cannot be used with an existing key"): an earlier import
 *   landed — typically this caller's own, whose answer was lost, now retried — or another client
 *   made the key. `AlreadyExists` naming the key's state; this material was not imported.
 * - no answer, or none readable (a dropped connection, a timeout, a 5xx): when the key exists the
 *   import most likely landed; the error keeps its code (it is no refusal: a caller keeping a
 *   record of the import, such as @keyport/byok's manifest, must keep it) and says so, final.
 *
 * The pending record stays either way: a retry is again sent as the creating import, which
 * transit refuses once the key exists, so an import that landed unseen is never repeated as a
 * new version. describeKey or a cryptographic call, which ask the server, end the record.
 */
async function creatingImportFailed(t: KeyTarget, error: unknown, signal: AbortSignal): Promise<unknown> {
  const { key } = t;
  const mapped = mapVaultError(error, key.uri);
  const exists = mapped?.code === 'AlreadyExists';
  if (!exists && mapped !== undefined && !AMBIGUOUS.has(mapped.code)) return error;
  // A caller that gave up (or whose deadline passed) is not kept waiting for the read.
  const there = signal.aborted ? undefined : await tryReadKey(t.s, key, signal).catch(() => undefined);
  const cause = mapped ?? error;
  const base = { provider: PROVIDER_NAME, keyUri: key.uri, retryable: false, cause };
  if (exists) {
    const now = there === undefined ? 'exists' : `exists (${keyState(there)})`;
    const why = `the key ${now}, so this material was not imported: an earlier import into it landed (one whose answer was lost, when this is a retry) or another client created it; describeKey shows the key, and material imported into it from then on becomes a new version`;
    return new KeyportError('AlreadyExists', why, base);
  }
  if (there === undefined) return error;
  const failure = mapped?.message ?? 'the import failed without an answer keyport reads';
  const why = `${failure}; the key now exists (${keyState(there)}): the import most likely landed (or another client created the key meanwhile), so it is not repeated; describeKey shows the key`;
  return new KeyportError(mapped?.code ?? 'Internal', why, base);
}

/** What a key read says of the key, for an error message (no material, no server text). */
function keyState(data: TransitKeyData): string {
  const state = data.soft_deleted === true ? 'disabled' : 'enabled';
  const material = data.imported_key === true ? 'imported material' : 'material transit generated';
  return `${state}, ${material}, latest version ${data.latest_version}`;
}

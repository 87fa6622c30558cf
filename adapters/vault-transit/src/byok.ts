/**
 * BYOK: transit's import protocol. `GET <mount>/wrapping_key` gives an RSA-4096 public key;
 * the material is sent as RSA-OAEP(ephemeral AES-256 key) || AES-KWP(ephemeral, material)
 * (RFC 5649), with the OAEP hash named by `hash_function`. Core calls these
 * `RSA_AES_KEY_WRAP_SHA_256` (`hash_function: SHA256`) and `RSA_AES_KEY_WRAP_SHA_1`
 * (`SHA1`): the wrapping key is the same for both, only the hash of the OAEP step differs.
 * SHA-1 is here for HSMs whose C_WrapKey does OAEP with SHA-1 only (SoftHSM2 2.6.1); in OAEP
 * the hash serves the padding, not collision resistance. Material is the raw key for AES and
 * HMAC keys and PKCS#8 DER for RSA / EC keys.
 *
 * Transit has no key without material, so `createKey({ external: true })` cannot create
 * anything on the server: the provider remembers the requested spec in memory (state
 * `pending_import`) until `importKeyMaterial` creates the key with `keys/<name>/import`.
 * For a key that already exists as imported, `importKeyMaterial` adds a version
 * (`import_version`).
 */
import { constants, createCipheriv, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import {
  type ImportKeyMaterialRequest,
  type ImportParameters,
  type ImportWrappingAlgorithm,
  KeyportError,
  type KeySpec,
  UnsupportedError,
} from '@keyport/core';
import { b64 } from './codec.js';
import { TYPE_BY_SPEC } from './key-types.js';
import { keyPath, type ResolvedKey } from './locate.js';
import type { VaultSession } from './session.js';

const KWP_IV = Buffer.from('a65959a6', 'hex');

/** The wrapping algorithms transit imports with, and the `hash_function` each one sends. */
export const TRANSIT_IMPORT_HASH = {
  RSA_AES_KEY_WRAP_SHA_256: { hashFunction: 'SHA256', oaepHash: 'sha256' },
  RSA_AES_KEY_WRAP_SHA_1: { hashFunction: 'SHA1', oaepHash: 'sha1' },
} as const;
export type TransitImportAlgorithm = keyof typeof TRANSIT_IMPORT_HASH;

const TRANSIT_ALGORITHMS = Object.keys(TRANSIT_IMPORT_HASH).join(' or ');

/** What transit takes when the caller names no algorithm. */
export const DEFAULT_IMPORT_ALGORITHM: TransitImportAlgorithm = 'RSA_AES_KEY_WRAP_SHA_256';

export function isTransitImportAlgorithm(
  algorithm: ImportWrappingAlgorithm,
): algorithm is TransitImportAlgorithm {
  return Object.hasOwn(TRANSIT_IMPORT_HASH, algorithm);
}

/**
 * The mount's wrapping key, for the algorithm the caller asked for (transit's wrapping key does
 * not depend on it; the algorithm only tells `importKeyMaterial` which `hash_function` to send).
 */
export async function getImportParameters(
  session: VaultSession,
  key: ResolvedKey,
  signal: AbortSignal,
  requested?: ImportWrappingAlgorithm,
): Promise<ImportParameters> {
  const algorithm = requested ?? DEFAULT_IMPORT_ALGORITHM;
  if (!isTransitImportAlgorithm(algorithm)) {
    throw new UnsupportedError(
      'import',
      `transit imports with ${TRANSIT_ALGORITHMS} only (not ${algorithm})`,
      {
        keyUri: key.uri,
      },
    );
  }
  const r = (await session.call(signal, (o, vault) => vault.read(`${key.mount}/wrapping_key`, o))) as {
    data: { public_key: string };
  };
  const der = createPublicKey(r.data.public_key).export({ type: 'spki', format: 'der' });
  return { keyUri: key.uri, algorithm, wrappingPublicKey: new Uint8Array(der) };
}

/**
 * Wraps key material for transit import (what an HSM-side tool would do). Exported so callers
 * without such a tool can wrap locally held material; the material never goes anywhere else.
 */
export function wrapForImport(
  wrappingPublicKey: Uint8Array,
  material: Uint8Array,
  algorithm: TransitImportAlgorithm = DEFAULT_IMPORT_ALGORITHM,
): Uint8Array {
  const ephemeral = randomBytes(32);
  try {
    const publicKey = createPublicKey({ key: Buffer.from(wrappingPublicKey), format: 'der', type: 'spki' });
    const wrappedKey = publicEncrypt(
      {
        key: publicKey,
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash: TRANSIT_IMPORT_HASH[algorithm].oaepHash,
      },
      ephemeral,
    );
    const kwp = createCipheriv('id-aes256-wrap-pad', ephemeral, KWP_IV);
    const wrappedMaterial = Buffer.concat([kwp.update(material), kwp.final()]);
    return new Uint8Array(Buffer.concat([wrappedKey, wrappedMaterial]));
  } finally {
    ephemeral.fill(0);
  }
}

export async function importKeyMaterial(
  session: VaultSession,
  key: ResolvedKey,
  req: ImportKeyMaterialRequest,
  pendingSpec: KeySpec | undefined,
  signal: AbortSignal,
): Promise<void> {
  if (!isTransitImportAlgorithm(req.algorithm)) {
    throw new KeyportError(
      'InvalidArgument',
      `transit imports only ${TRANSIT_ALGORITHMS} (got ${req.algorithm})`,
      { keyUri: key.uri },
    );
  }
  if (req.expiresAt !== undefined) {
    throw new KeyportError('InvalidArgument', 'transit imported material cannot expire', { keyUri: key.uri });
  }
  const ciphertext = b64(req.wrappedMaterial);
  const hashFunction = TRANSIT_IMPORT_HASH[req.algorithm].hashFunction;
  if (pendingSpec !== undefined) {
    await session.call(signal, (o, vault) =>
      vault.write(
        keyPath(key, '/import'),
        {
          ciphertext,
          hash_function: hashFunction,
          type: TYPE_BY_SPEC[pendingSpec],
          exportable: false,
          allow_plaintext_backup: false,
          // Later material arrives as new versions through import_version.
          allow_rotation: false,
        },
        o,
      ),
    );
    return;
  }
  await session.call(signal, (o, vault) =>
    vault.write(keyPath(key, '/import_version'), { ciphertext, hash_function: hashFunction }, o),
  );
}

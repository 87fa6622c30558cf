/**
 * BYOK: transit's import protocol. `GET <mount>/wrapping_key` gives an RSA-4096 public key;
 * the material is sent as RSA-OAEP-SHA256(ephemeral AES-256 key) || AES-KWP(ephemeral, material)
 * (RFC 5649), which is core's `RSA_AES_KEY_WRAP_SHA_256`. Material is the raw key for AES and
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
  KeyportError,
  type KeySpec,
} from '@keyport/core';
import { b64 } from './codec.js';
import { TYPE_BY_SPEC } from './key-types.js';
import { keyPath, type ResolvedKey } from './locate.js';
import type { VaultSession } from './session.js';

const KWP_IV = Buffer.from('a65959a6', 'hex');

export async function getImportParameters(
  session: VaultSession,
  key: ResolvedKey,
  signal: AbortSignal,
): Promise<ImportParameters> {
  const r = (await session.call(signal, (o) => session.client.read(`${key.mount}/wrapping_key`, o))) as {
    data: { public_key: string };
  };
  const der = createPublicKey(r.data.public_key).export({ type: 'spki', format: 'der' });
  return { keyUri: key.uri, algorithm: 'RSA_AES_KEY_WRAP_SHA_256', wrappingPublicKey: new Uint8Array(der) };
}

/**
 * Wraps key material for transit import (what an HSM-side tool would do). Exported so callers
 * without such a tool can wrap locally held material; the material never goes anywhere else.
 */
export function wrapForImport(wrappingPublicKey: Uint8Array, material: Uint8Array): Uint8Array {
  const ephemeral = randomBytes(32);
  try {
    const publicKey = createPublicKey({ key: Buffer.from(wrappingPublicKey), format: 'der', type: 'spki' });
    const wrappedKey = publicEncrypt(
      { key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
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
  if (req.algorithm !== 'RSA_AES_KEY_WRAP_SHA_256') {
    throw new KeyportError(
      'InvalidArgument',
      `transit imports only RSA_AES_KEY_WRAP_SHA_256 (got ${req.algorithm})`,
      {
        keyUri: key.uri,
      },
    );
  }
  if (req.expiresAt !== undefined) {
    throw new KeyportError('InvalidArgument', 'transit imported material cannot expire', { keyUri: key.uri });
  }
  const ciphertext = b64(req.wrappedMaterial);
  if (pendingSpec !== undefined) {
    await session.call(signal, (o) =>
      session.client.write(
        keyPath(key, '/import'),
        {
          ciphertext,
          hash_function: 'SHA256',
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
  await session.call(signal, (o) =>
    session.client.write(keyPath(key, '/import_version'), { ciphertext, hash_function: 'SHA256' }, o),
  );
}

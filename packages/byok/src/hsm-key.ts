/**
 * The HSM side of an import: the AES-256 key (generated, or an existing one checked), and the
 * wrap for the target, done inside the token by the pkcs11 provider's `wrapKeyForExport`:
 *
 * - RSAES_OAEP_*: the target's RSA public key is created as a session object (CKA_TOKEN false,
 *   CKA_WRAP true) and C_WrapKey(CKM_RSA_PKCS_OAEP) wraps the key under it.
 * - RSA_AES_KEY_WRAP_*: an ephemeral AES-256 session key is generated in the token,
 *   C_WrapKey(CKM_AES_KEY_WRAP_PAD) wraps the key under it, C_WrapKey(CKM_RSA_PKCS_OAEP) wraps
 *   the ephemeral key under the target's public key; the result is OAEP || KWP. The ephemeral
 *   key and the public key object are destroyed (C_DestroyObject) before the call returns,
 *   on success and on failure; the ephemeral key was never extractable in the clear
 *   (CKA_SENSITIVE true) and never left the token.
 *
 * Keys are generated CKA_EXTRACTABLE true (wrapping needs it) and CKA_SENSITIVE true (so
 * C_GetAttributeValue never returns CKA_VALUE): extractable only in wrapped form.
 */
import {
  type ImportWrappingAlgorithm,
  type KeyInfo,
  type KeyOperations,
  KeyportError,
  type KeyRef,
  parseKeyUri,
  pkcs11Attribute,
  UnsupportedError,
} from '@keyport/core';
import { versionId } from '@keyport/pkcs11';
import type { ByokPairing, ExistingHsmKey, HsmKeyExporter, NewHsmKey } from './types.js';

/** Creates the HSM key, or checks the given one: AES_256, enabled, with a primary version. */
export async function resolveHsmKey(
  keyport: KeyOperations,
  hsm: HsmKeyExporter,
  key: NewHsmKey | ExistingHsmKey,
  signal: AbortSignal | undefined,
): Promise<KeyInfo> {
  const info =
    'create' in key
      ? await generateHsmKey(keyport, hsm, key, signal)
      : await keyport.describeKey(key.uri, signal === undefined ? {} : { signal });
  return checkHsmKey(info);
}

/** Generates the exportable AES-256 key in the HSM (not checked: see `checkHsmKey`). */
export function generateHsmKey(
  keyport: KeyOperations,
  hsm: HsmKeyExporter,
  key: NewHsmKey,
  signal: AbortSignal | undefined,
): Promise<KeyInfo> {
  // `exportable` is @keyport/pkcs11's extension of CreateKeyRequest: CKA_EXTRACTABLE true,
  // CKA_SENSITIVE still true. Keyport passes the request through unchanged.
  const req = { ...key.create, spec: 'AES_256' as const, exportable: true };
  return keyport.createKey(hsm.scheme, req, signal === undefined ? {} : { signal });
}

/** The HSM key can be imported: AES_256, enabled, with a primary version. */
export function checkHsmKey(info: KeyInfo): KeyInfo {
  if (info.spec !== 'AES_256') {
    throw new UnsupportedError('import', `only AES_256 HSM keys are imported (this one is ${info.spec})`, {
      provider: 'byok',
      keyUri: info.uri,
    });
  }
  if (info.state !== 'enabled' || info.primaryVersion === undefined) {
    throw new KeyportError('KeyStateConflict', `the HSM key is ${info.state}, not enabled`, {
      provider: 'byok',
      keyUri: info.uri,
    });
  }
  return info;
}

/** Label and CKA_ID of the HSM key version, for the manifest. */
export function hsmObject(info: KeyInfo): ByokPairing['hsm'] {
  const parsed = parseKeyUri(info.uri);
  const version = info.primaryVersion ?? '1';
  const label = parsed.scheme === 'pkcs11' ? (pkcs11Attribute(parsed, 'object') ?? '') : '';
  return { uri: info.uri, label, id: versionId(Number(version)).toString('hex'), version };
}

/** Wraps the key inside the HSM; a key the token will not wrap out is a clear KeyStateConflict. */
export async function wrapInHsm(
  hsm: HsmKeyExporter,
  ref: KeyRef,
  wrappingPublicKeySpki: Uint8Array,
  algorithm: ImportWrappingAlgorithm,
  signal: AbortSignal | undefined,
): Promise<Uint8Array> {
  try {
    return await hsm.wrapKeyForExport(
      ref,
      { wrappingPublicKeySpki, algorithm },
      signal === undefined ? {} : { signal },
    );
  } catch (e) {
    if (e instanceof KeyportError && e.code === 'KeyStateConflict') {
      throw new KeyportError(
        'KeyStateConflict',
        'the HSM refuses to wrap this key out (CKR_KEY_UNEXTRACTABLE / CKR_KEY_NOT_WRAPPABLE): BYOK needs a key created exportable (CKA_EXTRACTABLE true)',
        { provider: 'byok', keyUri: ref.uri, cause: e },
      );
    }
    throw e;
  }
}

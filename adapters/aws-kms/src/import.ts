/**
 * BYOK: GetParametersForImport, ImportKeyMaterial, DeleteImportedKeyMaterial. The caller wraps its
 * material under the returned public key (keyport's CLI or the caller's HSM does that); the adapter
 * only moves bytes and translates the expiry model.
 */
import type { WrappingKeySpec } from '@aws-sdk/client-kms';
import {
  type ImportParameters,
  type ImportParametersRequest,
  isValidDate,
  type KeyInfo,
  type KeyRef,
  needs,
  type ProviderCallOptions,
} from '@keyport/core';
import { answeredBytes } from './errors.js';
import { describePinned } from './keys.js';
import { answeredKey, type DriverOp, type KmsRpc } from './rpc.js';
import { keyUriFor } from './uri.js';

export interface AwsImportParametersRequest extends ImportParametersRequest {
  /** Size of the RSA wrapping key; RSA_2048 by default (the size every emulator offers). */
  readonly wrappingKeySpec?: WrappingKeySpec;
}

export async function getImportParameters(
  rpc: KmsRpc,
  ref: KeyRef,
  req: AwsImportParametersRequest,
  o: ProviderCallOptions,
): Promise<ImportParameters> {
  const algorithm = req.algorithm ?? 'RSAES_OAEP_SHA_256';
  const key = await rpc.resolve(ref);
  const KeyId = await rpc.keyIdOrArn(key, o.signal);
  const WrappingKeySpec = req.wrappingKeySpec ?? 'RSA_2048';
  const out = await rpc.send(
    key,
    'GetParametersForImport',
    { KeyId, WrappingAlgorithm: algorithm, WrappingKeySpec },
    o.signal,
  );
  return {
    keyUri:
      out.KeyId !== undefined && answeredKey(out.KeyId, key, 'a key id', KeyId).startsWith('arn:')
        ? keyUriFor(out.KeyId, key.parsed)
        : key.uri,
    algorithm,
    wrappingPublicKey: answeredBytes(out.PublicKey, 'a wrapping public key'),
    importToken: answeredBytes(out.ImportToken, 'an import token'),
    // an Invalid Date (an epoch out of range) is no expiry: left out, as describeKey's dates
    ...(isValidDate(out.ParametersValidTo) ? { expiresAt: out.ParametersValidTo } : {}),
  };
}

/** Imports wrapped material. The wrapping algorithm is bound to the import token, so it is not sent. */
export const importKeyMaterial: DriverOp<'importKeyMaterial'> = async (rpc, ref, req, o) => {
  needs(req.importToken !== undefined, 'AWS KMS needs the import token from getImportParameters');
  needs(req.wrappedMaterial.length > 0, 'wrapped key material is empty');
  // AWS keeps whole seconds (and local-kms cannot read fractional ones)
  const validTo = req.expiresAt && new Date(Math.floor(req.expiresAt.getTime() / 1000) * 1000);
  needs(validTo === undefined || validTo.getTime() > Date.now(), 'key material expiry is in the past');
  const key = await rpc.resolve(ref);
  const input = {
    KeyId: await rpc.keyIdOrArn(key, o.signal),
    ImportToken: req.importToken,
    EncryptedKeyMaterial: req.wrappedMaterial,
    // always explicit: an absent model is "expires" on some endpoints and a crash on others
    ExpirationModel: validTo !== undefined ? 'KEY_MATERIAL_EXPIRES' : 'KEY_MATERIAL_DOES_NOT_EXPIRE',
    ValidTo: validTo,
  } as const;
  await rpc.send(key, 'ImportKeyMaterial', input, o.signal);
  // the key imported into, not whatever an alias names by now
  return describePinned(rpc, key, input.KeyId, o.signal);
};

/** Removes imported material: the key becomes pending import until material is imported again. */
export async function deleteImportedKeyMaterial(
  rpc: KmsRpc,
  ref: KeyRef,
  o: ProviderCallOptions,
): Promise<KeyInfo> {
  const key = await rpc.resolve(ref);
  const KeyId = await rpc.keyIdOrArn(key, o.signal);
  await rpc.send(key, 'DeleteImportedKeyMaterial', { KeyId }, o.signal);
  return describePinned(rpc, key, KeyId, o.signal);
}

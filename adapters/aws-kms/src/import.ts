/**
 * BYOK: GetParametersForImport, ImportKeyMaterial, DeleteImportedKeyMaterial. The caller wraps its
 * material under the returned public key (keyport's CLI or the caller's HSM does that); the adapter
 * only moves bytes and translates the expiry model.
 */
import type { WrappingKeySpec } from '@aws-sdk/client-kms';
import {
  type ImportKeyMaterialRequest,
  type ImportParameters,
  type ImportParametersRequest,
  type KeyRef,
  needs,
  type ProviderCallOptions,
} from '@keyport/core';
import { answered } from './errors.js';
import { keyUriFor } from './key-info.js';
import type { KmsRuntime } from './runtime.js';
import { kmsSdk } from './sdk.js';

export interface AwsImportParametersRequest extends ImportParametersRequest {
  /** Size of the RSA wrapping key; RSA_2048 by default (the size every emulator offers). */
  readonly wrappingKeySpec?: WrappingKeySpec;
}

export async function getImportParameters(
  rt: KmsRuntime,
  ref: KeyRef,
  req: AwsImportParametersRequest,
  o: ProviderCallOptions,
): Promise<ImportParameters> {
  const algorithm = req.algorithm ?? 'RSAES_OAEP_SHA_256';
  const key = await rt.clients.resolve(ref);
  const out = await key.client.send(
    new (kmsSdk().GetParametersForImportCommand)({
      KeyId: await rt.keyIdOrArn(key, o.signal),
      WrappingAlgorithm: algorithm,
      WrappingKeySpec: req.wrappingKeySpec ?? 'RSA_2048',
    }),
    { abortSignal: o.signal },
  );
  return {
    keyUri: out.KeyId?.startsWith('arn:') ? keyUriFor(out.KeyId, key.parsed) : key.uri,
    algorithm,
    wrappingPublicKey: answered(out.PublicKey, 'a wrapping public key'),
    importToken: answered(out.ImportToken, 'an import token'),
    ...(out.ParametersValidTo !== undefined ? { expiresAt: out.ParametersValidTo } : {}),
  };
}

/** Imports wrapped material. The wrapping algorithm is bound to the import token, so it is not sent. */
export async function importKeyMaterial(
  rt: KmsRuntime,
  ref: KeyRef,
  req: ImportKeyMaterialRequest,
  o: ProviderCallOptions,
): Promise<void> {
  needs(req.importToken !== undefined, 'AWS KMS needs the import token from getImportParameters');
  needs(req.wrappedMaterial.length > 0, 'wrapped key material is empty');
  let validTo: Date | undefined;
  if (req.expiresAt !== undefined) {
    // AWS keeps whole seconds (and local-kms cannot read fractional ones)
    validTo = new Date(Math.floor(req.expiresAt.getTime() / 1000) * 1000);
    needs(validTo.getTime() > Date.now(), 'key material expiry is in the past');
  }
  const key = await rt.clients.resolve(ref);
  await key.client.send(
    new (kmsSdk().ImportKeyMaterialCommand)({
      KeyId: await rt.keyIdOrArn(key, o.signal),
      ImportToken: req.importToken,
      EncryptedKeyMaterial: req.wrappedMaterial,
      // always explicit: an absent model is "expires" on some endpoints and a crash on others
      ExpirationModel: validTo !== undefined ? 'KEY_MATERIAL_EXPIRES' : 'KEY_MATERIAL_DOES_NOT_EXPIRE',
      ...(validTo !== undefined ? { ValidTo: validTo } : {}),
    }),
    { abortSignal: o.signal },
  );
}

export async function deleteImportedKeyMaterial(
  rt: KmsRuntime,
  ref: KeyRef,
  o: ProviderCallOptions,
): Promise<void> {
  const key = await rt.clients.resolve(ref);
  await key.client.send(
    new (kmsSdk().DeleteImportedKeyMaterialCommand)({ KeyId: await rt.keyIdOrArn(key, o.signal) }),
    {
      abortSignal: o.signal,
    },
  );
}

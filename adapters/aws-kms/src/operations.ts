/**
 * AWS-only operations through a `Keyport`: each runs on core's one call path (`driverCall` /
 * `instanceCall`), so it gets the same instance resolution, deadline, retries, abort, error
 * mapping and audit event (`aws-kms:<name>`) as the neutral operations. The methods of the same
 * names on `AwsKmsProvider` are the raw driver calls these wrap.
 */
import {
  type CallOptions,
  type ContextOptions,
  type DataKeyRequest,
  type KeyInfo,
  type KeyLike,
  type Keyport,
  KeyportError,
  type KmsProvider,
  toKeyRef,
} from '@keyport/core';
import type { ReEncryptRequest, ReEncryptResult } from './crypto.js';
import { AwsKmsProvider } from './provider.js';

function aws(driver: KmsProvider): AwsKmsProvider {
  if (!(driver instanceof AwsKmsProvider)) {
    throw new KeyportError('InvalidArgument', `the key's instance is a ${driver.scheme} driver, not aws-kms`);
  }
  return driver;
}

export interface KeyportReEncryptRequest extends Omit<ReEncryptRequest, 'destination'> {
  /** A key of the same instance as the source. */
  readonly destination: KeyLike;
}

/** ReEncrypt inside KMS: the plaintext never leaves it. Both keys belong to one instance. */
export function reEncrypt(
  keys: Keyport,
  source: KeyLike,
  ciphertext: Uint8Array,
  req: KeyportReEncryptRequest,
  o?: CallOptions,
): Promise<ReEncryptResult> {
  const sourceUri = toKeyRef(source).uri;
  return keys.instanceCall(
    sourceUri,
    'reEncrypt',
    (d, po, refOf) =>
      aws(d).reEncrypt(refOf(source), ciphertext, { ...req, destination: refOf(req.destination) }, po),
    o,
  );
}

export function generateDataKeyWithoutPlaintext(
  keys: Keyport,
  key: KeyLike,
  req: DataKeyRequest = {},
  o?: CallOptions,
): Promise<{ wrapped: Uint8Array; keyArn: string }> {
  const co: ContextOptions = { ...o, ...(req.context !== undefined ? { context: req.context } : {}) };
  return keys.driverCall(
    key,
    'generateDataKeyWithoutPlaintext',
    (d, ref, po) => aws(d).generateDataKeyWithoutPlaintext(ref, req, po),
    co,
  );
}

/** RetireGrant by grant token (on `instance`), or by key and grant id. */
export function retireGrant(
  keys: Keyport,
  instance: string,
  target:
    | { readonly token: string; readonly key?: KeyLike }
    | { readonly key: KeyLike; readonly grantId: string },
  o?: CallOptions,
): Promise<void> {
  return keys.instanceCall(
    instance,
    'retireGrant',
    (d, po, refOf) =>
      aws(d).retireGrant(
        'grantId' in target
          ? { key: refOf(target.key), grantId: target.grantId }
          : { token: target.token, ...(target.key !== undefined ? { key: refOf(target.key) } : {}) },
        po,
      ),
    o,
  );
}

/** Removes imported material: the key becomes pending import. */
export function deleteImportedKeyMaterial(keys: Keyport, key: KeyLike, o?: CallOptions): Promise<KeyInfo> {
  return keys.driverCall(
    key,
    'deleteImportedKeyMaterial',
    (d, ref, po) => aws(d).deleteImportedKeyMaterial(ref, po),
    o,
  );
}
